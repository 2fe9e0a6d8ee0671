"""Assignment 2, "CNN experiments": the cells of source/cnn_experiments/cnn_experiments.ipynb."""
from authoring.cells import answer, editable, given, given_md, solution, tests

PREFIX = "ce"

CELLS = [
    given_md("""
    # Convolutional networks on MNIST: six experiments

    You will start from a plain fully connected network (an MLP) that classifies handwritten digits,
    and change one thing at a time:

    | part | change | question |
    | --- | --- | --- |
    | 2.1 | put a `Conv2d` in front | does it generalise better? |
    | 2.2 | stack more convolutions | does depth help? |
    | 2.3 | same depth, but only `Linear` layers | is it the depth or the convolutions? |
    | 2.4 | max pooling, or stride 2 | what does shrinking the feature maps cost or gain? |
    | 2.5 | dropout | why can validation accuracy beat training accuracy? |
    | 2.6 | batch normalisation | does training get easier? |

    At the end you look inside a trained network (its filters and feature maps), compare every
    variant in one table, and look at which test digits the chosen model gets wrong.

    **How this notebook works.** You write each model as a short `nn.Sequential` in the cells marked
    `# YOUR CODE HERE`. The test cell after it checks the *architecture* (the layers and the
    shapes), not the accuracy, so run it before you spend time training. Questions marked
    *(manually graded)* are answered in words in the markdown cell below them. The training runs use
    `convcourse.train.fit`; when your notebook is graded, every training run is cut short on
    purpose, so the grade never depends on how lucky a run was.

    **Time.** On a laptop CPU one epoch of the larger models takes a minute or two, so `EPOCHS` in the
    next cell is 1 and the whole notebook runs in reasonable time. This cell is yours to change: with
    a GPU, try 5.
    """),
    editable("ce-settings", """
    EPOCHS = 1  # passes over the 50,000 training images per model
    """),
    given("""
    import torch
    from torch import nn

    from convcourse.data import load_mnist
    from convcourse.models import Model, PrintSize, count_parameters
    from convcourse.plots import (comparison, plot_confusion_matrix, plot_feature_maps, plot_filters, plot_history,
                                  plot_images, plot_misclassified)
    from convcourse.train import evaluate, fit

    torch.manual_seed(0)  # the same starting weights every time you run the notebook top to bottom

    runs, trained = {}, {}  # name -> training History / trained model, for the comparison at the end


    def train(name, model):
        \"\"\"Train model, record it and its history under name, and plot its learning curves.\"\"\"
        runs[name], trained[name] = fit(model, data, epochs=EPOCHS), model
        print(f"{name}: {count_parameters(model):,} parameters, "
              f"validation accuracy {runs[name].final_valid_accuracy:.3f}")
        return plot_history(runs[name])
    """),
    given_md("""
    ## The data

    `load_mnist` returns three splits: 50,000 training images, 10,000 validation images (used to
    compare models while you work) and 10,000 test images (looked at only at the end). Each split has
    `images` and `targets`. The images are stored the way convolutional layers expect them:
    `(N, C, H, W)`, that is (number of images, channels, height, width), here with one grey channel.
    """),
    given("""
    data = load_mnist()
    for name in ("train", "valid", "test"):
        split = getattr(data, name)
        print(f"{name:>5}: images {tuple(split.images.shape)}, targets {tuple(split.targets.shape)}")
    """),
    given("""
    print("one image:", tuple(data.train.images[0].shape), "(channels, height, width)")
    print("pixel values from", data.train.images.min().item(), "to", data.train.images.max().item())
    print("classes:", data.num_classes)
    # NBVAL_CHECK_OUTPUT
    """),
    given("""
    plot_images(data.train.images[:100], data.train.targets[:100])
    """),
    given_md("""
    ## The baseline: an MLP

    `Model` flattens each 1x28x28 image into 784 numbers and sends them through two hidden layers of
    128 units. It does not know that pixels have neighbours: shuffle the 784 inputs the same way for
    every image and it would learn just as well. Train it and note its validation accuracy.
    """),
    given("""
    mlp = Model()
    print(mlp)
    """),
    given("""
    train("mlp", mlp)
    """),
    given_md("""
    ## 2.1 Add a convolutional layer (2 points)

    Build `conv_model`: an `nn.Conv2d` with 32 filters of size 5x5 on the image, a ReLU, and then
    the same kind of classifier as the MLP (`nn.Flatten`, a hidden `nn.Linear` layer of 128 units
    with a ReLU, and an output layer with 10 units).

    * Choose the `padding` so the feature maps stay 28x28 (the formula from *output_dimensions*).
      Without padding every 5x5 convolution shaves two pixels off each border.
    * Put a `PrintSize()` before and after the convolution: the first time data flows through, it
      prints the shape at that point, which makes shape mistakes easy to find.
    * The first `nn.Linear` must accept `channels x height x width` values of the flattened
      feature maps.
    """),
    solution("ce-conv-model", """
    ### BEGIN SOLUTION
    conv_model = nn.Sequential(
        PrintSize(),
        nn.Conv2d(1, 32, kernel_size=5, padding=2),  # padding (5 - 1) / 2 = 2 keeps 28x28
        nn.ReLU(),
        PrintSize(),
        nn.Flatten(),
        nn.Linear(32 * 28 * 28, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    given("""
    conv_model(torch.zeros(2, 1, 28, 28)).shape  # two blank images in, one score per class out
    """),
    tests("ce-test-conv-model", 2, """
    layers = checks.check_classifier("conv_model", conv_model)  # (N, 1, 28, 28) -> (N, 10)
    checks.check_uses("conv_model", layers, "Conv2d")
    checks.check_keeps_size("conv_model", layers, kernel_size=5)  # padded 5x5 conv: still 28x28
    checks.check_uses("conv_model", layers, "PrintSize")
    print("conv_model has the right architecture")
    """),
    given("""
    train("2.1 conv", conv_model)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Compare the validation accuracy of `conv_model` with the
    MLP's. Did the convolutional layer help? Give a reason why a convolution suits images better
    than a fully connected layer on the raw pixels.
    """),
    answer("ce-conv-answer", 2, """
    *Model answer.* With the same training budget the conv model usually reaches a higher validation
    accuracy than the MLP (around one to two percentage points after an epoch; the exact numbers
    vary by run). A convolution looks at small neighbourhoods and applies the *same* weights at every
    position: it builds in that nearby pixels belong together and that a stroke means the same thing
    wherever it appears. Each filter has only 25 weights, so the features are learned from every
    position of every image at once, which generalises better than learning a separate weight for
    every pixel. (Most parameters here are in the large `Linear` layer after the convolution.)
    """),
    given_md("""
    ## 2.2 Stack convolutions (1 point)

    Build `stacked_model` with at least two convolutional layers (each followed by a ReLU) before
    the classifier, for example 16 filters of 5x5 and then 32 filters of 3x3, both padded to keep
    28x28. Remember that the second convolution's `in_channels` is the first one's `out_channels`.
    """),
    solution("ce-stacked-model", """
    ### BEGIN SOLUTION
    stacked_model = nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        PrintSize(),
        nn.Flatten(),
        nn.Linear(32 * 28 * 28, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    tests("ce-test-stacked-model", 1, """
    layers = checks.check_classifier("stacked_model", stacked_model)
    checks.check_uses("stacked_model", layers, "Conv2d", at_least=2)
    print("stacked_model has the right architecture")
    """),
    given("""
    train("2.2 stacked", stacked_model)
    """),
    given_md("""
    **Question (manually graded, 1 point).** Did the second convolution improve on 2.1? What can a
    second convolutional layer detect that the first cannot?
    """),
    answer("ce-stacked-answer", 1, """
    *Model answer.* Often a little, sometimes not at all within one epoch (the deeper model is
    slower per step and may need more training or a tuned learning rate). The second layer combines
    the first layer's feature maps: each of its units sees a 7x7 region of the image through two
    layers, so it can respond to combinations of edges, such as corners, loops and line ends, rather
    than single strokes.
    """),
    given_md("""
    ## 2.3 A deep MLP instead (1 point)

    Is it the extra depth that helps, or the convolutions? Build `deep_mlp` with **no** convolutions
    but at least four `nn.Linear` layers (as many weight layers as `stacked_model`), with ReLUs in
    between: flatten the image first, for example 784 -> 512 -> 512 -> 128 -> 10.
    """),
    solution("ce-deep-mlp", """
    ### BEGIN SOLUTION
    deep_mlp = nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    tests("ce-test-deep-mlp", 1, """
    layers = checks.check_classifier("deep_mlp", deep_mlp)
    checks.check_avoids("deep_mlp", layers, "Conv2d")
    checks.check_uses("deep_mlp", layers, "Linear", at_least=4)
    print("deep_mlp has the right architecture")
    """),
    given("""
    train("2.3 deep mlp", deep_mlp)
    """),
    given("""
    for name, model in [("mlp", mlp), ("2.2 stacked", stacked_model), ("2.3 deep mlp", deep_mlp)]:
        print(f"{name:>12}: {count_parameters(model):>9,} parameters")
    """),
    given_md("""
    **Question (manually graded, 2 points).** Does the deep MLP do as well as the convolutional
    network of 2.2? Use the accuracies and the parameter counts above to explain what you see.
    """),
    answer("ce-deep-mlp-answer", 2, """
    *Model answer.* Typically not: the deep MLP lands near the shallow MLP and below the conv
    networks, although it has hundreds of thousands of weights. Depth alone is not what helped.
    Its first layer still learns one weight per pixel and hidden unit, with no notion of
    neighbourhood and no weight sharing, so a pattern has to be learned separately at every
    position, and there are many more free parameters per useful feature, which makes overfitting
    easier. The conv network's advantage comes from its inductive bias (local, shared, translation
    equivariant filters), not from the number of layers. (Note the conv networks here have even more
    parameters, almost all in the first `Linear` after `Flatten`; the next part shrinks that.)
    """),
    given_md("""
    ## 2.4 Max pooling or stride 2 (2 points)

    The first `Linear` after a 28x28 feature map is huge. Halving the height and width divides the
    number of values after `Flatten` by four. Build two variants of `conv_model` (one 5x5
    convolution with 32 filters), each of which produces **14x14** feature maps:

    * `pool_model`: keep the padded convolution and add `nn.MaxPool2d(kernel_size=2, stride=2)` after
      its ReLU;
    * `stride_model`: no pooling layer; instead give the convolution `stride=2` (keep `padding=2`).

    Put a `PrintSize()` after the downsampling step to see 14x14 appear.
    """),
    solution("ce-downsample-models", """
    ### BEGIN SOLUTION
    pool_model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        PrintSize(),
        nn.Flatten(),
        nn.Linear(32 * 14 * 14, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    stride_model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=5, stride=2, padding=2),  # floor((28 + 4 - 5) / 2) + 1 = 14
        nn.ReLU(),
        PrintSize(),
        nn.Flatten(),
        nn.Linear(32 * 14 * 14, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    tests("ce-test-pool-model", 1, """
    layers = checks.check_classifier("pool_model", pool_model)
    checks.check_halves("pool_model", layers, by="pool")  # a MaxPool2d turns 28x28 into 14x14
    print("pool_model has the right architecture")
    """),
    tests("ce-test-stride-model", 1, """
    layers = checks.check_classifier("stride_model", stride_model)
    checks.check_halves("stride_model", layers, by="stride")  # a stride-2 Conv2d, and no pooling
    print("stride_model has the right architecture")
    """),
    given("""
    train("2.4 max pool", pool_model)
    """),
    given("""
    train("2.4 stride 2", stride_model)
    """),
    given_md("""
    **Question (manually graded, 1 point).** Compare both with `conv_model` (2.1): accuracy,
    parameters and training time (the final table at the end of the notebook collects them). What
    does each way of downsampling keep, and what does it throw away?
    """),
    answer("ce-downsample-answer", 1, """
    *Model answer.* Both cut the parameters of the first `Linear` layer by four (32x14x14 instead of
    32x28x28 inputs) and train faster, usually with similar or slightly better validation accuracy
    than 2.1. Max pooling computes the full 28x28 feature map and keeps the strongest response in
    every 2x2 block, which makes the output tolerant to shifts of a pixel. A stride-2 convolution
    only evaluates the filter at every other position: four times less convolution work, but it
    simply skips the positions in between instead of choosing the best of them.
    """),
    given_md("""
    ## 2.5 Dropout (1 point)

    `nn.Dropout(p)` sets a random fraction `p` of its inputs to zero at every training step (and
    scales the rest up by `1 / (1 - p)`); in evaluation mode it does nothing. Build `dropout_model`:
    a convolutional network of your choice (for example `pool_model`'s layers) with at least one
    `nn.Dropout` (or `nn.Dropout2d` after a convolution), for example with `p=0.3` before each
    `Linear` layer.
    """),
    solution("ce-dropout-model", """
    ### BEGIN SOLUTION
    dropout_model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32 * 14 * 14, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    tests("ce-test-dropout-model", 1, """
    layers = checks.check_classifier("dropout_model", dropout_model)
    checks.check_uses("dropout_model", layers, "Conv2d")
    checks.check_uses("dropout_model", layers, ("Dropout", "Dropout2d"))
    print("dropout_model has the right architecture")
    """),
    given("""
    train("2.5 dropout", dropout_model)
    """),
    given_md("""
    **Question (manually graded, 2 points).** With dropout the validation accuracy can end up
    *higher* than the training accuracy in the plot above. Explain why. (Hint: how, and in which mode,
    is each of the two curves measured?)
    """),
    answer("ce-dropout-answer", 2, """
    *Model answer.* The two numbers are measured under different conditions. The training accuracy
    is computed on the training batches *during* training, with dropout active: every prediction is
    made by a randomly thinned network missing 30% of its units, so it is handicapped on purpose. It
    is also an average over the steps since the last evaluation, while the weights were still
    improving. The validation accuracy is computed afterwards in evaluation mode, with the complete
    network (dropout off) and the latest weights. Dropout itself fights overfitting: units cannot
    rely on particular partners, so the network learns redundant, more general features, which
    narrows the gap between training and validation data.
    """),
    given_md("""
    ## 2.6 Batch normalisation (1 point)

    `nn.BatchNorm2d(channels)` normalises each channel of a feature map to zero mean and unit
    variance over the batch (then rescales it with two learned numbers per channel). Build
    `batchnorm_model` from two padded convolutions, each followed by a `nn.BatchNorm2d`, a ReLU and
    a 2x2 max pooling (28x28 -> 14x14 -> 7x7), then the classifier.
    """),
    solution("ce-batchnorm-model", """
    ### BEGIN SOLUTION
    batchnorm_model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=5, padding=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 32, kernel_size=3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    ### END SOLUTION
    """),
    tests("ce-test-batchnorm-model", 1, """
    layers = checks.check_classifier("batchnorm_model", batchnorm_model)
    checks.check_uses("batchnorm_model", layers, "Conv2d", at_least=2)
    checks.check_uses("batchnorm_model", layers, "BatchNorm2d")
    print("batchnorm_model has the right architecture")
    """),
    given("""
    train("2.6 batch norm", batchnorm_model)
    """),
    given_md("""
    **Question (manually graded, 1 point).** Compare the learning curve of `batchnorm_model` with
    those of the earlier conv models, especially early in training. What does batch normalisation
    change?
    """),
    answer("ce-batchnorm-answer", 1, """
    *Model answer.* The curve usually rises faster in the first few hundred steps and ends at a
    similar or slightly higher validation accuracy. Normalising every channel keeps the inputs of
    each layer on a stable scale while the earlier layers change, so the optimiser can take larger
    useful steps and the network is less sensitive to the initial weights and the learning rate.
    The batch statistics add a little noise per batch, which also acts as a mild regulariser.
    """),
    given_md("""
    ## Inside a trained network

    The first convolutional layer's filters act directly on pixels, so they can be drawn as small
    images: red weights add up brightness under them, blue weights subtract it. Below are the 32
    filters of `conv_model` (2.1), then what the filters of `stacked_model` (2.2) make of one test
    digit: each small image is one channel of a feature map.
    """),
    given("""
    plot_filters(conv_model)
    """),
    given("""
    plot_feature_maps(stacked_model, data.test.images[0])
    """),
    given_md("""
    **Question (manually graded, 1 point).** Describe two kinds of filters you can recognise and
    what they respond to in the feature maps. (After a short training run the filters are still
    noisy; look for the overall pattern of red and blue.)
    """),
    answer("ce-filters-answer", 1, """
    *Model answer.* Several filters are split into a red and a blue half: edge detectors for one
    orientation (horizontal, vertical or diagonal). Their feature maps light up along the strokes
    of that orientation, on one side of the stroke. Others are a blob of one sign: they respond to
    the brightness of the whole stroke (or, inverted, to the background), giving a blurred copy of
    the digit. The second layer's maps are more selective, combining those edges into parts of
    digits.
    """),
    given_md("""
    ## All variants side by side

    The table collects every training run: parameters, steps, time and validation accuracy.
    Differences of a few tenths of a percent are within the noise of a single run.

    Models are compared and chosen on the *validation* set. The test set is used once, for the
    chosen model only: its accuracy there estimates how it will do on digits it has never seen,
    an estimate that would be too optimistic if we had also used the test set to pick the winner.
    """),
    given("""
    best = max(runs, key=lambda name: runs[name].final_valid_accuracy)
    test_result = evaluate(trained[best], data.test)
    print(f"best on validation: {best}; its test accuracy: {test_result.accuracy:.3f}")
    table, chart = comparison(runs, {best: test_result})
    display(table.round(4))
    chart
    """),
    given("""
    plot_history(runs)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Which model would you choose for this task, and why?
    Weigh accuracy against parameters and training time, and say which single change helped most.
    """),
    answer("ce-choice-answer", 2, """
    *Model answer.* A small convolutional network with downsampling (max pooling or stride 2),
    optionally with batch normalisation or dropout, is the best trade-off: it reaches the highest or
    near-highest validation accuracy with a fraction of the parameters of the unpooled conv models
    and trains quickly. The single most useful change is the first convolution (2.1); replacing
    convolutions by more `Linear` layers (2.3) does not buy the same improvement. The decision should
    be made on validation accuracy; the test accuracy is reported once, at the end, to estimate how
    the chosen model does on new data.
    """),
    given_md("""
    ## Where the chosen model goes wrong

    Accuracy is one number; the *confusion matrix* shows which digits are taken for which. Row *i*,
    column *j* counts the test images of digit *i* that the chosen model (`best`, above) classified
    as *j*: the diagonal holds the right answers, everything off it is a mistake. Below it, test
    digits it got wrong, each titled *true -> predicted*.
    """),
    given("""
    plot_confusion_matrix(trained[best], data.test, name=best)
    """),
    given("""
    plot_misclassified(trained[best], data.test, n=24, name=best)
    """),
    given_md("""
    **Question (manually graded, 1 point).** Which digits does the chosen model confuse most often?
    Look at the misclassified digits: would you have read them correctly, and what do its mistakes
    have in common?
    """),
    answer("ce-errors-answer", 1, """
    *Model answer.* The mistakes are not spread evenly: most of them sit in a few cells off the
    diagonal, between digits that share strokes, such as 4 and 9, 3, 5 and 8, 7 and 2 or 1 (the exact
    pairs vary by run). Many misclassified digits are hard for a person too: oddly written, slanted,
    with broken or very thick strokes, cut off at the border, a few arguably labelled wrong. The
    rest are clear digits in an unusual style or position, which more training, more varied
    training images (small shifts and rotations) or a deeper conv network would fix.
    """),
]
