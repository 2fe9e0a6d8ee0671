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
    2. use it on seven layers written down on paper (two of them cannot work: spot them),
    3. turn the formula into a function, `output_shape`,
    4. explore the interactive shape calculator, and
    5. confirm your answers with real `nn.Conv2d` layers.

    **How this notebook works.** Locked cells are read-only: run them. Replace
    `raise NotImplementedError()` in the cells marked `# YOUR CODE HERE` with your own code, then
    run the test cell below it: no output or a short "ok" message means it passed, an error
    explains what is wrong. Some test cells contain extra hidden cases that run only when your
    notebook is graded. Run everything from top to bottom.
    """),
    given("""
    import torch
    from torch import nn

    from convcourse.checks import SHAPE_CASES, compare_with_conv2d
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
    for number, case in SHAPE_CASES.items():
        print(f"case {number}: {case.describe()}")
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    For every case write the output shape as a tuple `(C_out, H_out, W_out)` of ints, or `None` if
    no `Conv2d` can compute it. Work them out with the formula (pen and paper or Python
    arithmetic with `//`), not by running a layer: that comes at the end. Fill in the dictionary
    `answers`, which maps the case number to your answer.
    """),
    solution("od-answers", """
    # answers = {1: (..., ..., ...), 2: ..., 3: ..., 4: ..., 5: ..., 6: ..., 7: ...}
    ### BEGIN SOLUTION
    answers = {
        1: (16, 24, 24),    # (28 - 5) / 1 + 1 = 24
        2: (24, 30, 30),    # (32 - 3) / 1 + 1 = 30
        3: (3, 16, 16),     # (32 - 2) / 2 + 1 = 16
        4: (7, 4, 8),       # floor((8 + 2 - 3) / 2) + 1 = 4, floor((16 + 2 - 3) / 2) + 1 = 8
        5: (112, 256, 256), # (256 + 2 - 3) / 1 + 1 = 256: padding 1 keeps the size of a 3x3 kernel
        6: None,            # the filters have 1 channel, the input has 3
        7: None,            # a 7x7 kernel does not fit into the padded 6x6 input
    }
    ### END SOLUTION
    """),
    tests("od-test-answers-simple", 2, """
    checks.check_shape_answers(answers, [1, 2, 3])
    print("cases 1-3 are right")
    """),
    tests("od-test-answers-padding", 2, """
    checks.check_shape_answers(answers, [4, 5])
    print("cases 4-5 are right")
    """),
    tests("od-test-answers-invalid", 1, """
    checks.check_shape_answers(answers, [6, 7])
    print("cases 6-7 are right")
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
    output_shape((1, 28, 28), 16, (1, 5, 5), (1, 1), (2, 2))  # should be (16, 28, 28)
    """),
    tests("od-test-function-visible", 2, """
    checks.check_output_shape_function(output_shape, list(checks.SHAPE_CASES.values()))
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
    ## The shape calculator

    The calculator below computes the same thing interactively and also shows the formula with your
    numbers, the parameter count, and what an optional pooling layer does afterwards. Change the
    values and watch the output. Some things to try:

    * With a 3x3 kernel and stride 1, which padding keeps 28x28? With 5x5? With 7x7?
    * Set stride 2: what happens to 28x28 with a 3x3 kernel and padding 1?
    * Make the kernel larger than the input, or pad by more than the kernel: what does it say?
    * How does the parameter count change with the number of input channels?

    (In a plain-text viewer the calculator appears as text; open the notebook in JupyterLab to use it.)
    """),
    given("""
    ShapeCalculator(input_shape=(1, 28, 28), filters=16, kernel=5, padding=2)
    """),
    given_md("""
    ## Check against PyTorch

    Finally, ask PyTorch itself. For each case, the cell below builds a real `nn.Conv2d` with those
    settings, passes a tensor of zeros of the input shape through it, and reports the output shape
    (without the batch dimension), or *error* where PyTorch refuses. Every line should say `yes`.
    """),
    given("""
    print(compare_with_conv2d(answers))
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    Here is one of them spelled out, so you can see what the table does:
    """),
    given("""
    layer = nn.Conv2d(in_channels=11, out_channels=7, kernel_size=3, stride=2, padding=1)  # case 4
    x = torch.zeros(1, 11, 8, 16)  # a batch of one input of shape (11, 8, 16)
    print(layer(x).shape)
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    ### Question (2 points)

    Case 5 keeps the 256x256 size. For a square `k x k` kernel with stride 1, which padding `p`
    keeps the height and width unchanged? Derive it from the formula. Why is there no such
    (symmetric) padding when `k` is even?
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
    ## What you have seen

    * Output height and width: $\\lfloor (H + 2p - k)/s \\rfloor + 1$, separately per direction; output
      channels = number of filters; the filters' channels must match the input's.
    * Padding $(k-1)/2$ keeps the size of an odd kernel at stride 1; stride 2 roughly halves it.

    In the next notebook, *cnn_experiments*, you will use this to build and train convolutional
    networks on MNIST.
    """),
]
