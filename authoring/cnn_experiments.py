"""Assignment 2, "CNN experiments": the cells of source/cnn_experiments/cnn_experiments.ipynb."""
from authoring.cells import answer, editable, given, given_md, solution, tests

PREFIX = "ce"

# Said once to the grader in every model answer: the Formgrader shows a rerun, not the student's run.
GRADER = ("*For the grader:* the outputs on the page come from the autograder's rerun, cut to a few training steps; "
          "grade the numbers the student quotes from their own run (they should agree with each other and with "
          "the question), not the page.")

CELLS = [
    given_md("""
    # Convolutional networks on MNIST: seven experiments

    You will start from a plain fully connected network (an MLP) that classifies handwritten digits,
    and change one thing at a time:

    | part | change | question |
    | --- | --- | --- |
    | 2.1 | put a `Conv2d` in front | does it generalise better? |
    | 2.2 | stack more convolutions | does depth help? |
    | 2.3 | same depth, but only `Linear` layers | is it the depth or the convolutions? |
    | 2.4 | max pooling or stride 2; the learning rate | what does shrinking the feature maps cost or gain? |
    | 2.5 | the pooling model plus dropout | why can validation accuracy beat training accuracy? |
    | 2.6 | batch normalisation, against the same model without it | does training get easier? |
    | 2.7 | digits moved by 1 to 3 pixels | which networks still recognise them? |

    At the end you look inside a trained network (its filters and feature maps), compare every
    variant in one table, and look at which test digits the chosen model gets wrong. The
    assignment has 29 points: 11 for code that the test cells check, 18 for written answers.
    """),
    given_md("""
    **How this notebook works.** You write each model as a short `nn.Sequential` in the cells marked
    `# YOUR CODE HERE`. The test cell after it checks the *architecture* (the layers and the
    shapes), not the accuracy, so run it before you spend time training. Questions marked
    *(manually graded)* are answered in words in the markdown cell below them.

    **Quote your numbers.** When your notebook is graded, it is run again with every training cut
    to a few steps, so the grader sees other accuracies than you do. Each question says which of
    your numbers to quote: copy them from your run into your answer.
    """),
    given_md("""
    **Time.** One epoch per model (`EPOCHS` below) keeps the whole notebook a coffee break on a
    laptop CPU. The settings cell is yours to change: with a GPU, try 5 epochs.
    """),
    editable("ce-settings", """
    EPOCHS = 1  # passes over the 50,000 training images per model
    LEARNING_RATE = 1e-3  # the step size of the optimiser (Adam) in every run; 2.4 tries others
    """),
    given("""
    import torch
    from torch import nn

    from convcourse.data import Split, load_mnist
    from convcourse.evaluation import evaluate
    from convcourse.models import Model, PrintSize, count_parameters, fresh_copy, without_layers
    from convcourse.plots import (comparison, plot_confusion_matrix, plot_feature_maps, plot_filters, plot_history,
                                  plot_images, plot_misclassified, plot_shift_robustness)
    from convcourse.train import curve_table, fit
    from convcourse.translation import shift_robustness

    torch.manual_seed(0)  # the same starting weights every time you run the notebook top to bottom

    runs, trained = {}, {}  # name -> training History / trained model, for the comparison at the end


    def train(name, model, lr=LEARNING_RATE):
        \"\"\"Train model with learning rate lr, validating every 100 steps; record it under name and plot its curves.\"\"\"
        runs[name], trained[name] = fit(model, data, epochs=EPOCHS, lr=lr, validate_every=100), model
        print(f"{name}: {count_parameters(model):,} parameters, "
              f"validation accuracy {runs[name].final_valid_accuracy:.4f}, trained in {runs[name].wall_time:.0f} s")
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
    every image and it would learn just as well.
    """),
    given("""
    mlp = Model()
    print(mlp)
    """),
    given_md("""
    The network's output is one score per class, a *logit*. The softmax turns the ten scores of an
    image into probabilities, $p_i = e^{s_i} / \\sum_j e^{s_j}$: positive, and adding up to 1. Before
    training the weights are small and random, so the ten scores are close to each other and every
    class gets a probability near 1/10: the network does not know anything yet. The loss that
    training lowers, the cross-entropy, is $-\\ln p$ of the true class: $\\ln 10 \\approx 2.30$ for a
    network that guesses evenly.

    PyTorch's cross-entropy (`nn.functional.cross_entropy`, which `fit` uses, or `nn.CrossEntropyLoss`)
    takes the raw scores and applies the (log-)softmax itself. So every model in this notebook ends
    with its last `nn.Linear`, without an `nn.Softmax`: a softmax before the loss would be applied
    twice, squashing the scores and slowing training (a test cell prints a `HabitWarning` if a model
    ends in one). Apply the softmax yourself only to read probabilities, as below.
    """),
    given("""
    images, targets = data.train.images[:3], data.train.targets[:3]
    with torch.no_grad():
        scores = mlp(images)
    probabilities = scores.softmax(dim=1)
    print(probabilities.numpy().round(3))
    print("each row adds up to", probabilities.sum(dim=1).numpy().round(3), "; true classes:", targets.tolist())
    print(f"cross-entropy of these three images: {nn.functional.cross_entropy(scores, targets):.2f}")
    """),
    given_md("""
    Now train it and note its validation accuracy. `fit` shows a progress bar and, every 100
    steps, the accuracy so far on the training batches and on the validation images.
    """),
    given("""
    train("mlp", mlp)
    """),
    given_md("""
    ## 2.1 Add a convolutional layer (5 points)

    First see what a convolution does to the size of an image. Build `first_try`: a `PrintSize()`,
    an `nn.Conv2d` with 32 filters of size 5x5 and *no* padding, and another `PrintSize()`. The cell
    after it sends two blank images through it; each `PrintSize` prints the shape it sees (the
    first time only).
    """),
    solution("ce-first-try", """
    ### BEGIN SOLUTION
    first_try = nn.Sequential(PrintSize(), nn.Conv2d(1, 32, kernel_size=5), PrintSize())
    ### END SOLUTION
    """),
    given("""
    _ = first_try(torch.zeros(2, 1, 28, 28))  # two blank images: (N, C, H, W)
    """),
    tests("ce-test-first-try", 1, """
    checks.check_unpadded("first_try", first_try)  # PrintSize, a 5x5 Conv2d with 32 filters and no padding, PrintSize
    print("first_try has the right layers")
    """),
    given_md("""
    The feature maps are smaller than the image: the filter is only applied where it fits entirely
    on the image, so the pixels along the borders are never the centre of a patch. Every further
    layer would shrink the maps again and lose what lies near the edges. *Padding* adds rows and
    columns of zeros around the image, so the filter fits at every pixel.

    Now build `conv_model`: an `nn.Conv2d` with 32 filters of size 5x5 on the image, a ReLU, and
    then the same kind of classifier as the MLP (`nn.Flatten`, a hidden `nn.Linear` layer of 128
    units with a ReLU, and an output layer with 10 units).

    * Choose the `padding` so the feature maps stay 28x28 (the formula from *output_dimensions*).
    * Put a `PrintSize()` before and after the convolution, to see the size kept.
    * The first `nn.Linear` must accept `channels x height x width` values of the flattened
      feature maps.
    """),
    solution("ce-conv-model", """
    ### BEGIN SOLUTION
    conv_model = nn.Sequential(
        PrintSize(),
        nn.Conv2d(1, 32, kernel_size=5, padding=2),
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
    checks.check_keeps_size("conv_model", layers, kernel_size=5, filters=32, reveal=False)  # 32 5x5 filters, padded: 28x28
    checks.check_uses("conv_model", layers, "PrintSize")
    print("conv_model has the right architecture")
    """),
    given("""
    train("2.1 conv", conv_model)
    """),
    given_md("""
    **Question (manually graded, 2 points).** (a) Quote the shape that `PrintSize` printed after
    `first_try`'s convolution and say why the maps are smaller than the image. (b) Quote the final
    validation accuracy of `mlp` and of `conv_model` (the line under each training run). Did the
    convolutional layer help? Give a reason why a convolution suits images better than a fully
    connected layer on the raw pixels.
    """),
    answer("ce-conv-answer", 2, f"""
    *Model answer.* (a) `torch.Size([2, 32, 24, 24])`: 32 maps of 24x24. A 5x5 filter fits entirely on a
    28-pixel row at 28 - 5 + 1 = 24 positions, so two rows and two columns are lost at each border;
    padding 2 puts them back. (b) After one epoch the conv model is ahead of the MLP by about three
    percentage points (in our runs the MLP ended at 0.950, `conv_model` at 0.977 to 0.980; the exact
    numbers vary by run and machine, the order did not). A convolution looks at small neighbourhoods and
    applies the *same* weights at every position: it builds in that nearby pixels belong together and
    that a stroke means the same thing wherever it appears. Each filter has only 25 weights (plus a
    bias), learned from every position of every image at once. (Most parameters here are in the large
    `Linear` layer after the convolution.)

    {GRADER}
    """),
    given_md("""
    ## 2.2 Stack convolutions (2 points)

    Build `stacked_model` with at least two convolutional layers (each followed by a ReLU) before
    the classifier, for example 16 filters of 5x5 and then 32 filters of 3x3, both padded to keep
    28x28. Remember that the second convolution's `in_channels` is the first one's `out_channels`.
    A unit of the second layer sees a 3x3 patch of the first layer's maps, each of which saw a 5x5
    patch of the image: its *receptive field*, the part of the image it depends on, is larger than
    either filter. [cs231n's notes on convolutional networks](https://cs231n.github.io/convolutional-networks/)
    explain layers, receptive fields and pooling in more depth.
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
    **Question (manually graded, 1 point).** Quote the final validation accuracy of `stacked_model`
    next to `conv_model`'s. Did the second convolution improve on 2.1? How large is the receptive
    field of a unit of your second convolutional layer, and what can it detect that a unit of the
    first cannot?
    """),
    answer("ce-stacked-answer", 1, f"""
    *Model answer.* A little, if at all, after one epoch: in our runs `stacked_model` ended at 0.980 to
    0.982 against 0.977 to 0.980, a difference another run can shrink or reverse. The deeper model is
    slower per step and may need more training or a tuned learning rate to show more. With a 5x5 and
    then a 3x3 convolution (stride 1) a unit of the second layer sees a 7x7 region of the image (5 + 3 -
    1), so it can respond to combinations of edges, such as corners, loops and line ends, rather than
    single strokes. Other filter sizes give other fields: k1 + k2 - 1.

    {GRADER}
    """),
    given_md("""
    ## 2.3 A deep MLP instead (3 points)

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
        convs = sum(p.numel() for layer in model.modules() if isinstance(layer, nn.Conv2d) for p in layer.parameters())
        print(f"{name:>12}: {count_parameters(model):>9,} parameters, {convs:>6,} of them in convolutions")
    """),
    given_md("""
    **Question (manually graded, 2 points).** Quote the final validation accuracy of `mlp`,
    `deep_mlp` and `stacked_model` and their parameter counts (above). Does the deep MLP do as well
    as the convolutional network? Can the number of parameters explain the difference?
    """),
    answer("ce-deep-mlp-answer", 2, f"""
    *Model answer.* No: the deep MLP gains one to two points on the shallow MLP but stays below the conv
    networks (in our runs 0.960 to 0.964 against 0.977 to 0.982). The parameter counts do not explain
    it. With the example layers the deep MLP has 731,530 parameters, 6.2 times the MLP's 118,282, yet
    gains little; the stacked conv network has 3,217,738, 4.4 times *more* than the deep MLP, but only
    5,056 of them are in its convolutions: the rest sit in the first `Linear` layer after `Flatten`,
    which sees the feature maps rather than raw pixels. So depth alone is not what helps, and neither is
    size: the MLP's first layer learns one weight per pixel and hidden unit, with no notion of
    neighbourhood and no weight sharing, so every pattern has to be learned anew at every position. The
    conv network's advantage is its inductive bias: small, local filters shared across all positions
    (translation equivariance). Other layer sizes give other counts; the comparison comes out the same
    way.

    {GRADER}
    """),
    given_md("""
    ## 2.4 Max pooling or stride 2 (5 points)

    The first `Linear` after a 28x28 feature map is huge. Halving the height and width divides the
    number of values after `Flatten` by four. Build two variants of `conv_model` (one 5x5
    convolution with 32 filters), each of which produces **14x14** feature maps:

    * `pool_model`: keep the padded convolution and add `nn.MaxPool2d(kernel_size=2, stride=2)` after
      its ReLU;
    * `stride_model`: no pooling layer; instead give the convolution `stride=2` (keep `padding=2`).

    Put a `PrintSize()` after the downsampling step to see 14x14 appear.

    Max pooling keeps the strongest response in each 2x2 block, wherever in the block it lies: a
    stroke that moves by a pixel but stays within its block gives the same output. That is some
    tolerance to small shifts, which 2.7 measures.
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
        nn.Conv2d(1, 32, kernel_size=5, stride=2, padding=2),
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
    **Question (manually graded, 1 point).** Quote the validation accuracy, the parameters and the
    training time (the line printed under each training run) of `conv_model`, `pool_model` and
    `stride_model`. What does each way of downsampling keep, and what does it throw away?
    """),
    answer("ce-downsample-answer", 1, f"""
    *Model answer.* Both cut the parameters of the first `Linear` layer by four (32x14x14 = 6,272 inputs
    instead of 32x28x28 = 25,088: 802,944 weights and biases instead of 3,211,392; the whole model has
    805,066 parameters instead of 3,213,514) and train faster, the stride
    model fastest, with a validation accuracy close to 2.1's (in our runs `pool_model` 0.977 to 0.980,
    `stride_model` 0.973 to 0.976, `conv_model` 0.977 to 0.980; which one is ahead varies by run). Max
    pooling computes the full 28x28 feature map and keeps the strongest response in every 2x2 block,
    which makes the output tolerant to a stroke moving within the block (2.7 measures it). A stride-2
    convolution only evaluates the filter at every other position: four times less convolution work, but
    it skips the positions in between instead of choosing the best of them.

    {GRADER}
    """),
    given_md("""
    ### The learning rate

    Every run so far used Adam with the learning rate `LEARNING_RATE` of the settings cell, 0.001:
    it scales every step the optimiser takes. The cell below trains three fresh copies of
    `stride_model` (the same layers with new random weights; the quickest of your conv models
    to train) with learning rates a hundred times larger, ten times larger and ten times smaller,
    and shows the four stride-2 runs together; the table gives their validation accuracy at
    every point.
    """),
    given("""
    for lr in (LEARNING_RATE * 100, LEARNING_RATE * 10, LEARNING_RATE / 10):
        train(f"2.4 stride 2, lr={lr:g}", fresh_copy(stride_model, seed=1), lr=lr)
    strided = {name: run for name, run in runs.items() if name.startswith("2.4 stride 2")}
    display(curve_table(strided).round(4))
    plot_history(strided)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Quote the validation accuracy of the four stride-2
    runs at step 100 and at the end. Which learning rate works best here within one epoch? What
    goes wrong when the learning rate is too large, and when it is too small?
    """),
    answer("ce-lr-answer", 2, f"""
    *Model answer.* In our runs the default 0.001 reached about 0.89 to 0.91 at step 100 and 0.974 to
    0.976 at the end. Ten times larger, 0.01, learned faster (about 0.94 to 0.95 at step 100) and ended
    within half a point of it (0.973 to 0.977, on either side): for this small network and one epoch, a
    ten times larger rate does about as well. A hundred times larger, 0.1, is far too large: the first
    steps overshoot (the mean training loss of the first 100 steps, about 4 to 5, is worse than the ln
    10 of guessing evenly), and the accuracy then stalls well below the others (0.67 to 0.88 at step
    100, 0.86 to 0.91 at the end), jumping up and down instead of improving. Ten times smaller, 0.0001,
    is too small: every step changes the weights so little that the network is far behind at step 100
    (about 0.79 to 0.82) and still climbing at the end (about 0.93): it would need many more epochs. The
    exact numbers vary by run; the pattern (too small: slow; too large: stuck and noisy; the best rate
    between) did not.

    {GRADER}
    """),
    given_md("""
    ## 2.5 Dropout (3 points)

    `nn.Dropout(p)` sets each of its inputs to zero independently with probability `p` at every
    training step (and scales the rest up by `1 / (1 - p)`); in evaluation mode it does nothing.
    Build `dropout_model`: exactly `pool_model`'s layers, with an `nn.Dropout(p=0.3)` added before
    each `nn.Linear` (after `Flatten` and after the hidden ReLU). Changing one thing only makes the
    comparison fair: whatever differs between the two runs comes from dropout (and the random
    starting weights).
    """),
    solution("ce-dropout-model", """
    ### BEGIN SOLUTION
    dropout_model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        PrintSize(),
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
    pool_layers = checks.check_classifier("pool_model", pool_model)
    checks.check_same_layers("dropout_model", layers, "pool_model", pool_layers, ("Dropout", "Dropout2d"))
    print("dropout_model is pool_model with dropout")
    """),
    given("""
    train("2.5 dropout", dropout_model)
    """),
    given_md("""
    The training curve of `fit` is the accuracy on the training batches *as they are trained*: in
    training mode (dropout on) and averaged over the steps since the previous point, while the
    weights were still improving. The validation curve is measured at the point, in evaluation
    mode. The cell below adds a third number: 10,000 training images scored like the validation
    images, by the network at the end, in evaluation mode.
    """),
    given("""
    train_images = Split(data.train.images[:10_000], data.train.targets[:10_000])
    for name in ("2.4 max pool", "2.5 dropout"):
        print(f"{name:>12}: training batches {runs[name].train_accuracy[-1]:.4f}, "
              f"training images in evaluation mode {evaluate(trained[name], train_images).accuracy:.4f}, "
              f"validation {runs[name].final_valid_accuracy:.4f}")
    """),
    given_md("""
    **Question (manually graded, 2 points).** Quote the three numbers printed for each model. Is
    `dropout_model`'s accuracy on the training batches further below its validation accuracy than
    `pool_model`'s, and why? What do the training images scored in evaluation mode show? (Hint: how,
    when and in which mode is each number measured?)
    """),
    answer("ce-dropout-answer", 2, f"""
    *Model answer.* Yes. The training-batch accuracy is measured *during* training, with dropout active:
    every prediction comes from a randomly thinned network missing 30% of its units, handicapped on
    purpose. In our runs `dropout_model` scored 0.956 to 0.961 on the training batches but 0.972 to
    0.979 on training images in evaluation mode (validation 0.973 to 0.979), while `pool_model` scored
    0.973 to 0.974 against 0.980 (validation 0.977 to 0.980). Both batch accuracies are also averages
    over the last steps of a network that was still improving, which is why even `pool_model`'s sits a
    little below its validation accuracy after one epoch; the validation accuracy is measured at the
    point, in evaluation mode, with the whole network (dropout off) and the latest weights. Scored the
    same way, in evaluation mode, the training images come out as high as the validation images or a
    little higher, for both models: after one epoch neither network overfits much, so the gap in the
    curves is about *how* each number is measured, not about dropout generalising better. Dropout's own
    purpose (units cannot rely on particular partners, which narrows the gap between training and
    validation accuracy) shows over more epochs, when `pool_model`'s training accuracy runs ahead of its
    validation accuracy. The exact numbers vary by run; the larger gap with dropout did not.

    {GRADER}
    """),
    given_md("""
    ## 2.6 Batch normalisation (3 points)

    `nn.BatchNorm2d(channels)` normalises each channel separately. While training it subtracts the
    channel's mean and divides by its standard deviation, both taken over the whole batch and every
    position of the map (the N, H and W axes), then scales and shifts it with two learned numbers per
    channel (gamma and beta, the layer's `weight` and `bias`). It also keeps running averages of those
    means and variances, and in evaluation mode uses them instead of the batch's, so a prediction
    does not depend on which other images share its batch.

    Build `batchnorm_model` from two padded convolutions, each followed by a `nn.BatchNorm2d`, a ReLU
    and a 2x2 max pooling (28x28 -> 14x14 -> 7x7), then the classifier. The cell after the test
    makes `no_batchnorm_model`: a copy with every `BatchNorm2d` replaced by `nn.Identity` (which
    passes its input on unchanged) and the same starting weights, so the two runs differ by batch
    normalisation only.
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
    no_batchnorm_model = without_layers(batchnorm_model, nn.BatchNorm2d)  # before training: the same starting weights
    print(no_batchnorm_model)
    """),
    given("""
    train("2.6 batch norm", batchnorm_model)
    """),
    given("""
    train("2.6 no batch norm", no_batchnorm_model)
    """),
    given("""
    normed = {name: runs[name] for name in ("2.6 batch norm", "2.6 no batch norm")}
    display(curve_table(normed).round(4))
    plot_history(normed)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Quote the validation accuracy of both models at steps
    100 and 200 and at the end (the table above). What does batch normalisation change, and when
    in training does it show?
    """),
    answer("ce-batchnorm-answer", 2, f"""
    *Model answer.* The batch-normalised network is clearly ahead early: in our runs 0.958 to 0.959
    against 0.910 to 0.927 at step 100, still ahead at step 200 (0.956 to 0.966 against 0.949 to 0.952);
    by the end of the epoch the two are close (0.982 to 0.984 against 0.979 to 0.980). Normalising every
    channel keeps the inputs of each layer on a stable scale while the earlier layers change, so the
    optimiser can take larger useful steps from the start and the network is less sensitive to its
    starting weights and to the learning rate. The batch statistics add a little noise per batch, a mild
    regulariser; in evaluation mode the running averages replace them. The size of the early lead varies
    by run, and at the end the two are within a run's noise; that batch normalisation helps most early
    on did not.

    {GRADER}
    """),
    given_md("""
    ## 2.7 Shifted digits (4 points)

    2.4 said that max pooling gives some tolerance to small shifts, since the maximum of a 2x2 block
    stays the same when a stroke moves within the block. Measure it, without retraining:
    move the validation digits by 1, 2 and 3 pixels and score the trained networks on them (the
    validation digits, because comparing networks is what they are for; the test set waits for
    the end).

    Write `shift_images(images, dy, dx)`. It takes images shaped `(N, C, H, W)` and returns new
    images of the same shape in which every pixel has moved `dy` rows down and `dx` columns to the
    right (negative values: up and left). Pixels moved past the border are dropped; the uncovered
    rows and columns are 0, the black background. Leave `images` itself unchanged.
    """),
    solution("ce-shift-images", """
    def shift_images(images, dy, dx):
        ### BEGIN SOLUTION
        height, width = images.shape[-2:]
        # zeros on the side the digit moves away from, then the window the image moved into
        padded = nn.functional.pad(images, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
        return padded[..., max(-dy, 0):max(-dy, 0) + height, max(-dx, 0):max(-dx, 0) + width]
        ### END SOLUTION
    """),
    tests("ce-test-shift-images", 2, """
    # One image of 3x4 pixels moved one row down and two columns left, then two images moved right;
    # when your notebook is graded, this cell also checks random sizes, batches and shifts.
    checks.check_shift(shift_images, [checks.ShiftCase((1, 1, 3, 4), 1, -2), checks.ShiftCase((2, 1, 5, 6), 0, 3)])
    ### BEGIN HIDDEN TESTS
    checks.check_shift(shift_images, checks.random_shift_cases(seed=2107, count=25))
    ### END HIDDEN TESTS
    print("shift_images moves the pixels as it should")
    """),
    given("""
    moves = {"as they are": (0, 0), "3 up": (-3, 0), "3 down": (3, 0), "3 left": (0, -3), "3 right": (0, 3)}
    print("rows:", ", ".join(moves))
    plot_images(torch.cat([shift_images(data.valid.images[:8], dy, dx) for dy, dx in moves.values()]), nrow=8)
    """),
    given("""
    shifted = shift_robustness({"mlp": mlp, "2.1 conv": conv_model, "2.4 max pool": pool_model,
                                "2.4 stride 2": stride_model}, data.valid, shift_fn=shift_images)
    display(shifted.round(4))
    plot_shift_robustness(shifted)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Quote each network's accuracy at 0 and at 2 pixels
    (the table above). Which network loses least when the digits move, and which most? Does max
    pooling give the tolerance to shifts claimed in 2.4? Why does `conv_model` lose accuracy
    although its filters slide over every position of the image?
    """),
    answer("ce-shift-answer", 2, f"""
    *Model answer.* At 0 and at 2 pixels in our three runs (validation digits, the mean over the four
    directions): the MLP 0.950 and 0.668 (0.393 at 3 pixels); `conv_model` 0.977 to 0.980 and 0.845 to
    0.860; `pool_model` 0.977 to 0.980 and 0.850 to 0.857; `stride_model` 0.973 to 0.976 and 0.813 to
    0.823. The MLP loses most: every pixel has its own weights, so a moved digit lands on weights that
    never saw it there. The conv networks lose much less at 1 pixel but a lot at 2 and 3. Max pooling
    helps only a little: within half a point of `conv_model` at 1 and 2 pixels (ahead in one run, behind
    in the others), one to three points ahead at 3. The stride-2 network loses most of the three. A 2x2
    block keeps its maximum only when the strongest response stays inside the block, which a 1-pixel
    move allows for half of the positions, and one pooling layer does nothing for larger moves. So it
    gives some tolerance, not invariance. `conv_model` loses accuracy although its filters slide over
    the whole image because a convolution is translation *equivariant*, not invariant: its feature maps
    move with the digit, and the `Linear` layer after `Flatten` has a separate weight for every position
    of every map, so the moved maps meet other weights. Invariance would need more pooling down to small
    maps (or global pooling), or training on shifted digits. The exact accuracies vary by run; the MLP
    losing most and pooling helping only a little did not.

    {GRADER}
    """),
    given_md("""
    ## Inside a trained network (1 point)

    The first convolutional layer's filters act directly on pixels, so they can be drawn as small
    images: red weights add up brightness under them, blue weights subtract it. Below are the 32
    filters of `conv_model` (2.1), and under them the 32 feature maps they make of one validation
    digit, in the same places: map #k is filter #k applied at every position of the image.
    """),
    given("""
    plot_filters(conv_model)
    """),
    given("""
    plot_feature_maps(conv_model, data.valid.images[0], max_maps=32, ncols=8)
    """),
    given_md("""
    **Question (manually graded, 1 point).** Pick two filters of different kinds and quote their
    numbers. Describe each filter's pattern of red and blue and what its feature map (the same
    number) shows of the digit. (After one epoch the filters are still noisy; look for the
    overall pattern.)
    """),
    answer("ce-filters-answer", 1, f"""
    *Model answer.* Several filters are split into a red and a blue half: edge detectors for one
    orientation (horizontal, vertical or diagonal). Their maps light up along the strokes of that
    orientation, on one side of the stroke, and go dark on the other. Others are a blob of one
    sign: they respond to the brightness of the whole stroke (or, inverted, to the background),
    giving a blurred copy of the digit (or its negative). Which numbers hold which kind differs
    from run to run.

    {GRADER}
    """),
    given_md("""
    ## All variants side by side (2 points)

    The table collects every training run: parameters, steps, time and validation accuracy.
    Differences of a few tenths of a percent are within the noise of a single run.

    Models are compared and chosen on the *validation* set. The test set is used once, for the
    chosen model only: its accuracy there estimates how it will do on digits it has never seen,
    an estimate that would be too optimistic if we had also used the test set to pick the winner.
    """),
    given("""
    best = max(runs, key=lambda name: runs[name].final_valid_accuracy)
    test_result = evaluate(trained[best], data.test)
    print(f"best on validation: {best}; its test accuracy: {test_result.accuracy:.4f}")
    table, chart = comparison(runs, {best: test_result})
    display(table.round(4))
    chart
    """),
    given("""
    plot_history(runs)
    """),
    given_md("""
    **Question (manually graded, 2 points).** Which model would you choose for this task, and why?
    Quote the validation accuracy, parameters and training time of your choice and of one
    alternative from the table, and say which single change helped most.
    """),
    answer("ce-choice-answer", 2, f"""
    *Model answer.* A small convolutional network with downsampling (max pooling or stride 2),
    optionally with batch normalisation, is the best trade-off: it reaches the highest or
    near-highest validation accuracy with a quarter of the parameters of the unpooled conv models
    (or far fewer, with two pooling steps) and trains quickly. The single most useful change is the
    first convolution (2.1); replacing convolutions by more `Linear` layers (2.3) does not buy the
    same improvement. The decision should be made on validation accuracy; the test accuracy is
    reported once, at the end, to estimate how the chosen model does on new data. Which run tops
    the table varies; any well-argued choice among the conv models with its numbers is fine.

    {GRADER}
    """),
    given_md("""
    ## Where the chosen model goes wrong (1 point)

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
    **Question (manually graded, 1 point).** Quote the two largest counts off the diagonal (true
    digit, predicted digit, count). Look at the misclassified digits: would you have read them
    correctly, and what do its mistakes have in common?
    """),
    answer("ce-errors-answer", 1, f"""
    *Model answer.* The mistakes are not spread evenly: most of them sit in a few cells off the
    diagonal, between digits that share strokes, such as 4 and 9, 3, 5 and 8, 7 and 2 or 1 (the exact
    pairs and counts vary by run). Many misclassified digits are hard for a person too: oddly
    written, slanted, with broken or very thick strokes, cut off at the border, a few arguably
    labelled wrong. The rest are clear digits in an unusual style or position, which more training,
    more varied training images (small shifts and rotations, see 2.7) or a deeper conv network
    would fix.

    {GRADER}
    """),
    given_md("""
    ## To see more

    If you have not yet, watch Jason Yosinski's
    [video on visualising what convolutional networks learn](https://www.youtube.com/watch?v=AgkfIQ4IGaM):
    the filters and feature maps of a network far deeper than these, layer by layer.
    """),
]
