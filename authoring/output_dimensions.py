"""Assignment 1.2, "Output dimensions": the cells of source/output_dimensions/output_dimensions.ipynb."""
from authoring.cells import answer, given, given_md, solution, tests

PREFIX = "od"

CELLS = [
    given_md("""
    # How big is the output of a convolution?

    Before you stack convolutional layers you need to know what shape comes out of each one: the
    next layer must accept it, and the `nn.Linear` at the end needs the exact number of values. In
    this notebook you will

    1. learn the output-size formula for `nn.Conv2d`,
    2. use it on seven layers written down on paper (some may not work at all: spot them),
    3. turn the formula into a function, `output_shape`, and check it against real `nn.Conv2d` layers,
    4. explore the interactive shape calculator,
    5. work out how much of the image one output pixel sees (its **receptive field**), and
    6. count a network's parameters, and see where almost all of them sit.

    **How this notebook works.** Locked cells are read-only: run them. Replace
    `raise NotImplementedError()` in the cells marked `# YOUR CODE HERE` with your own code, then
    run the test cell below it: a test cell that passes prints a line saying so (a cell of hidden
    cases prints nothing), one that fails ends in an error that explains what is wrong. The hidden
    cases run only when your notebook is graded. Run everything from top to bottom.
    """),
    given("""
    import torch
    from torch import nn

    from convcourse.checks import PAPER_CASES, compare_function_with_conv2d
    from convcourse.shapes import formula
    from convcourse.widgets import ShapeCalculator
    """),
    given_md("""
    ## The formula

    A `Conv2d` layer has `C_out` filters. Each filter has the shape `(C_in, kh, kw)`: it spans **all**
    input channels, so `C_in` must equal the number of channels of the input. Every filter produces
    one output channel, so the output has `C_out` channels whatever `C_in` was.

    Height and width are handled separately and the same way. With input height $H$, kernel height
    $k_h$, padding $p_h$ (rows of zeros added on *each* side) and stride $s_h$:

    $$H_{out} = \\left\\lfloor \\frac{H + 2 p_h - k_h}{s_h} \\right\\rfloor + 1$$

    Read it as: the padded input is $H + 2p_h$ rows tall; the kernel's first position uses $k_h$ of
    them, leaving $H + 2p_h - k_h$ rows to move through; it moves $s_h$ rows per step, and any
    incomplete last step is dropped (the floor, $\\lfloor\\cdot\\rfloor$); the $+1$ counts the first position.
    The width follows with $W$, $k_w$, $p_w$, $s_w$.

    A layer is **invalid** when the filters' channel count differs from the input's, or when the
    kernel is larger than the padded input ($k_h > H + 2p_h$), because then it fits nowhere.
    (Vincent Dumoulin's [conv_arithmetic](https://github.com/vdumoulin/conv_arithmetic) animates
    padding and strides on small grids, with the paper that works the formula out case by case.)

    The package can print the formula with numbers filled in. A 28-pixel image, a 5-wide kernel,
    padding 2, stride 1:
    """),
    given("""
    print(formula(28, 5, stride=1, padding=2))
    print(formula(28, 5, stride=2, padding=0))  # stride 2: (28 - 5) / 2 = 11.5, rounded down
    """),
    given_md("""
    ## Task 1: seven layers on paper (5 points)

    Here are the layers. Each line gives the input as `(channels, height, width)`, the number of
    filters and the size of each filter `(channels, kh, kw)`, and stride and padding as
    `(height, width)`.
    """),
    given("""
    for number, case in PAPER_CASES.items():
        print(f"case {number}: {case.describe()}")
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    For every case write the output shape as a tuple `(C_out, H_out, W_out)` of ints, or `None` if
    no `Conv2d` can compute it. Work them out with the formula (pen and paper or Python
    arithmetic with `//`), not by running a layer. Fill in the dictionary `answers`, which maps the
    case number to your answer. The test cells say which cases are wrong and, where they recognise
    it, the mistake, but not the answer.
    """),
    solution("od-answers", """
    # answers = {1: (..., ..., ...), 2: ..., 3: ..., 4: ..., 5: ..., 6: ..., 7: ...}
    ### BEGIN SOLUTION
    answers = {
        1: (16, 24, 24),    # (28 - 5) / 1 + 1 = 24
        2: (24, 30, 30),    # (32 - 3) / 1 + 1 = 30
        3: None,            # the filters have 1 channel, the input has 3
        4: (3, 16, 16),     # (32 - 2) / 2 + 1 = 16
        5: (7, 4, 8),       # floor((8 + 2 - 3) / 2) + 1 = 4, floor((16 + 2 - 3) / 2) + 1 = 8
        6: None,            # a 7x7 kernel does not fit into the padded 6x6 input
        7: (112, 256, 256), # (256 + 2 - 3) / 1 + 1 = 256: padding 1 keeps the size of a 3x3 kernel
    }
    ### END SOLUTION
    """),
    tests("od-test-answers-1-4", 3, """
    checks.check_shape_answers(answers, [1, 2, 3, 4], checks.PAPER_CASES)
    print("cases 1-4 are right")
    """),
    tests("od-test-answers-5-7", 2, """
    checks.check_shape_answers(answers, [5, 6, 7], checks.PAPER_CASES)
    print("cases 5-7 are right")
    """),
    given_md("""
    ## Task 2: the formula as a function (4 points)

    Write `output_shape(input_shape, num_filters, filter_shape, stride, padding)`. The arguments
    mean the same as in the cases above: `input_shape = (C, H, W)`,
    `filter_shape = (C_filter, kh, kw)`, `stride = (sh, sw)`, `padding = (ph, pw)`. Return the output
    shape as a tuple of three ints, or `None` when the layer is invalid (channel mismatch, or a
    kernel larger than the padded input in either direction).

    Use integer arithmetic: `//` divides and rounds down in one go.
    """),
    solution("od-output-shape", """
    def output_shape(input_shape, num_filters, filter_shape, stride=(1, 1), padding=(0, 0)):
        \"\"\"(C_out, H_out, W_out) of a Conv2d layer, or None if the layer cannot be computed.\"\"\"
        ### BEGIN SOLUTION
        channels, height, width = input_shape
        filter_channels, kh, kw = filter_shape
        if filter_channels != channels:
            return None
        if kh > height + 2 * padding[0] or kw > width + 2 * padding[1]:
            return None
        out_h = (height + 2 * padding[0] - kh) // stride[0] + 1
        out_w = (width + 2 * padding[1] - kw) // stride[1] + 1
        return (num_filters, out_h, out_w)
        ### END SOLUTION
    """),
    given("""
    output_shape((3, 20, 20), 8, (3, 3, 3), (1, 1), (1, 1))  # should be (8, 20, 20)
    """),
    tests("od-test-function-visible", 2, """
    # The seven cases are Task 1's: a wrong one is named, its answer is not.
    checks.check_output_shape_function(output_shape, list(checks.PAPER_CASES.values()), reveal=False)
    print("output_shape is right on the seven cases")
    """),
    tests("od-test-function-hidden", 2, """
    # When your notebook is graded, this cell also tries output_shape on many random layers
    # (rectangular kernels, strides and paddings that differ between height and width, invalid ones).
    checks.check_output_shape_function(output_shape, [checks.ShapeCase((3, 10, 12), 4, (3, 3, 5), (2, 1), (0, 2))])
    ### BEGIN HIDDEN TESTS
    checks.check_output_shape_function(output_shape, checks.random_shape_cases(seed=1201, count=60))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## Check against PyTorch

    Now ask PyTorch itself, on six layers that are not Task 1's: the first layer of the next
    notebook's convolutional model, the second layer of the original lab's two-layer model (with
    stride 1, then 2) and three odd ones. For each, the cell below runs your `output_shape`,
    builds a real `nn.Conv2d` with those settings, passes a tensor of zeros of the input shape
    through it and reports the output shape (without the batch dimension), or *an error* where
    PyTorch refuses the layer. Every pair should agree.
    """),
    given("""
    print(compare_function_with_conv2d(output_shape))
    """),
    given_md("""
    Here is one of them spelled out, so you can see what the check does:
    """),
    given("""
    layer = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3, stride=2, padding=1)
    x = torch.zeros(1, 32, 28, 28)  # a batch of one input of shape (32, 28, 28)
    print(layer(x).shape)
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    ## The shape calculator

    The calculator below computes the same thing interactively and also shows the formula with your
    numbers, the parameter count, and what an optional pooling layer does afterwards. Change the
    values and watch the output. Some things to try:

    * With a 3x3 kernel and stride 1, which padding keeps the height and width? With 5x5? With 7x7?
    * Set stride 2: what happens to 20x20 with a 3x3 kernel and padding 1? And to 28x28?
    * Make the kernel larger than the input, or pad by more than the kernel: what does it say?
    * How does the parameter count change with the number of input channels?

    (In a plain-text viewer the calculator appears as text; open the notebook in JupyterLab to use it.)
    """),
    given("""
    ShapeCalculator(input_shape=(3, 20, 20), filters=8, kernel=3)
    """),
    given_md("""
    ### Question (2 points)

    Networks often keep the height and width of their feature maps from one convolution to the
    next. For a square `k x k` kernel with stride 1, which padding `p` keeps the height and width
    unchanged? Derive it from the formula. Why is there no such (symmetric) padding when `k` is
    even?
    """),
    answer("od-same-padding-answer", 2, """
    *Model answer.* With stride 1 the formula gives $H_{out} = H + 2p - k + 1$. Setting
    $H_{out} = H$ gives $2p = k - 1$, so $p = (k - 1)/2$: padding 1 for a 3x3 kernel, 2 for 5x5,
    3 for 7x7.

    For even $k$, $k - 1$ is odd, so $2p = k - 1$ has no whole-number solution: with the same
    padding on both sides the output is always one pixel too large or too small. Keeping the size
    would need one more row/column of padding on one side than on the other (PyTorch's
    `padding="same"` does exactly that), which also means the output is shifted by half a pixel.
    """),
    given_md("""
    ## Task 3: the receptive field (4 points)

    Every unit of a feature map is computed from a patch of the layer below it, that patch from a
    larger patch of the layer below that, and so on down to the image. The part of the *image* a
    unit depends on is its **receptive field**: the seed lab's own term for what makes
    convolutional layers local. A first 3x3 convolution sees 3x3 pixels. A second 3x3
    convolution on top of it sees 3x3 units of the first layer, neighbours one pixel apart, whose
    fields overlap: 3 + (3 - 1) = 5 pixels along a side. Two small kernels stacked see as far as one
    5x5 kernel, with fewer weights and one more non-linearity in between.
    """),
    given_md("""
    A layer with stride `s` (a pooling layer too) spaces its units `s` times as far apart as the
    units below it. That spacing in image pixels, the **jump**, grows with every stride, and each
    later kernel widens the field by `(k - 1)` jumps. Starting from one pixel (r = 1, jump = 1),
    layer by layer:

    $$r \\leftarrow r + (k - 1) \\cdot \\text{jump}, \\qquad \\text{jump} \\leftarrow \\text{jump} \\cdot s$$

    Padding shifts the field but does not widen it. Worked through for
    conv 3x3 -> conv 3x3 -> max-pool 2 (stride 2) -> conv 3x3: the fields are 3, then 3 + 2 = 5,
    then 5 + 1 = 6 (the pool's own 2x2 window adds one pixel; the jump becomes 2 after it), then
    6 + 2 · 2 = 10 pixels. (The
    [cs231n notes on convolutional networks](https://cs231n.github.io/convolutional-networks/) work
    through receptive fields, output sizes and parameter counts for larger networks.)
    """),
    given_md("""
    Now the stack **conv 5x5 -> conv 3x3 -> max-pool 2 (stride 2) -> conv 3x3**, all convolutions
    with stride 1. Work out, by hand, the receptive field after each of its four layers, and write
    the four numbers as a list.
    """),
    solution("od-fields-by-hand", """
    # fields_by_hand = [..., ..., ..., ...]  # after the conv 5x5, the conv 3x3, the pool, the last conv 3x3
    ### BEGIN SOLUTION
    fields_by_hand = [5, 7, 8, 12]
    ### END SOLUTION
    """),
    tests("od-test-fields-by-hand", 2, """
    checks.exercises().check_fields_by_hand(fields_by_hand)
    print("fields_by_hand is right")
    """),
    given_md("""
    Then in code: write `receptive_field(layers)` for a list of `(kernel_size, stride)` pairs,
    returning the receptive field of one unit after the last layer (an int).
    """),
    solution("od-receptive-field", """
    def receptive_field(layers):
        \"\"\"Receptive field (pixels along one side) of a unit after layers of (kernel_size, stride) pairs.\"\"\"
        ### BEGIN SOLUTION
        field, jump = 1, 1
        for kernel, stride in layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field
        ### END SOLUTION
    """),
    tests("od-test-receptive-field", 1, """
    checks.exercises().check_receptive_field(receptive_field, [[(3, 1), (3, 1), (2, 2), (3, 1)], [(7, 2)], [(1, 1)],
                                                               [(3, 2), (3, 2), (3, 2)]])
    print("receptive_field is right on the visible stacks")
    """),
    tests("od-test-receptive-field-hidden", 1, """
    # When your notebook is graded, this cell also tries receptive_field on many random stacks.
    ex = checks.exercises()
    ex.check_receptive_field(receptive_field, [[(2, 2), (2, 2)]])
    ### BEGIN HIDDEN TESTS
    ex.check_receptive_field(receptive_field, ex.random_field_cases(seed=1202, count=40))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## Task 4: counting parameters (4 points)

    A `Conv2d` layer holds one kernel per filter and input channel and one bias per filter:
    `C_out x C_in x kh x kw` weights plus `C_out` biases, whatever the size of the image. The first
    layer of the next notebook's convolutional model, 32 filters of 5x5 on a grey image, has
    32 x 1 x 5 x 5 + 32 = **832** parameters. An `nn.Linear(in_features, out_features)` holds
    `in_features x out_features` weights plus `out_features` biases: one weight for every pair of
    input value and output unit.

    The original lab's first convolutional network is: conv 5x5 with 32 filters and padding 2 ->
    ReLU -> max-pool 2 (stride 2) -> Flatten -> `Linear(?, 128)` -> ReLU -> `Linear(128, 10)`, on
    28x28 grey images. Count, by hand:

    * `"linear"`: the parameters of its first `Linear` layer (the `?` is the number of values that
      reach it),
    * `"linear_no_pool"`: the same layer's parameters when the max-pool is left out,
    * `"gap_head"`: the parameters of a **global-average-pooling head** in place of everything after
      the max-pool: `nn.AdaptiveAvgPool2d(1)` averages each feature map to a single number, then
      `nn.Flatten()` and one `nn.Linear(..., 10)` give the ten class scores.

    Compare the three with the conv layer's 832: where do the parameters of a convolutional network sit?
    """),
    solution("od-param-counts", """
    # param_counts = {"linear": ..., "linear_no_pool": ..., "gap_head": ...}
    ### BEGIN SOLUTION
    param_counts = {
        "linear": 32 * 14 * 14 * 128 + 128,        # 28x28 maps pooled to 14x14
        "linear_no_pool": 32 * 28 * 28 * 128 + 128,
        "gap_head": 32 * 10 + 10,                  # one average per map: 32 values
    }
    ### END SOLUTION
    """),
    tests("od-test-param-counts", 2, """
    checks.exercises().check_parameter_counts(param_counts)
    print("param_counts is right")
    """),
    given_md("""
    Then in code: write `conv_parameters(in_channels, out_channels, kernel_size, bias=True)` for a
    `Conv2d` layer, with `kernel_size` a `(kh, kw)` pair; it returns the number of parameters.
    """),
    solution("od-conv-parameters", """
    def conv_parameters(in_channels, out_channels, kernel_size, bias=True):
        \"\"\"Number of weights and biases of nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias).\"\"\"
        ### BEGIN SOLUTION
        kh, kw = kernel_size
        return out_channels * in_channels * kh * kw + (out_channels if bias else 0)
        ### END SOLUTION
    """),
    given("""
    layer = nn.Conv2d(16, 32, kernel_size=3)  # 16 -> 32 channels, as the next notebook suggests for stacked_model
    print("conv_parameters:", conv_parameters(16, 32, (3, 3)), " PyTorch:", sum(p.numel() for p in layer.parameters()))
    """),
    tests("od-test-conv-parameters", 1, """
    ex = checks.exercises()
    ex.check_conv_parameters(conv_parameters, [ex.CountCase(1, 32, (5, 5)), ex.CountCase(3, 8, (3, 1)),
                                               ex.CountCase(16, 4, (2, 2), bias=False)])
    print("conv_parameters is right on the visible layers")
    """),
    tests("od-test-conv-parameters-hidden", 1, """
    # When your notebook is graded, this cell also counts many random layers, some without bias.
    ex = checks.exercises()
    ex.check_conv_parameters(conv_parameters, [ex.CountCase(7, 5, (1, 4))])
    ### BEGIN HIDDEN TESTS
    ex.check_conv_parameters(conv_parameters, ex.random_count_cases(seed=1203, count=40))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## What you have seen

    * Output height and width: $\\lfloor (H + 2p - k)/s \\rfloor + 1$, separately per direction; output
      channels = number of filters; the filters' channels must match the input's.
    * Padding adds $2p$ to the size before the kernel takes its share; stride 2 roughly halves it.
    * A unit's receptive field grows by $(k - 1)$ jumps per layer, and every stride multiplies the
      jump: stacked small kernels and pooling let deep units see large parts of the image.
    * A convolution's parameters do not depend on the image size; a `Linear` layer after `Flatten`
      multiplies every value of the feature maps by every unit, which is where the parameters pile up.

    In the next notebook, *cnn_experiments*, you will use this to build and train convolutional
    networks on MNIST.
    """),
]
