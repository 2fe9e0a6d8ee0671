"""Assignment 1.1, "Convolution by hand": the cells of source/manual_convolution/manual_convolution.ipynb."""
from authoring.cells import answer, given, given_md, solution, tests

PREFIX = "mc"

CELLS = [
    given_md("""
    # Convolution by hand

    A convolutional layer slides a small grid of weights, the **kernel**, over an image. At every
    position it multiplies the kernel with the patch of image underneath, entry by entry, and adds
    the products up. That one number becomes one pixel of the output, the **feature map**.

    In this notebook you will

    1. compute a small convolution on paper and type in the result,
    2. max-pool that result,
    3. turn what you did by hand into two NumPy functions, `conv2d_naive` and `maxpool2d`,
       which are then compared with PyTorch's own `conv2d` and `max_pool2d`.

    **How this notebook works.** Grey cells with a lock are read-only: run them, don't edit them.
    Cells that say `# YOUR CODE HERE` (or *YOUR ANSWER HERE*) are yours: replace the
    `raise NotImplementedError()` line with your answer. After each of your cells comes a test cell;
    run it to check your work. Silence means it passed; a failure says what is wrong. Some test cells
    also contain hidden cases that only run when your notebook is graded, so make your functions
    work in general, not just on the visible examples. Run the cells from top to bottom
    (*Run → Run All Cells* is fine).
    """),
    given("""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns
    import torch
    import torch.nn.functional as F

    from convcourse.widgets import EXAMPLE_INPUT, EXAMPLE_KERNEL, ConvVisualiser

    x = np.array(EXAMPLE_INPUT, dtype=float)   # the 5x5 input: one channel, like a grey image
    k = np.array(EXAMPLE_KERNEL, dtype=float)  # the 3x3 kernel
    print("x =\\n", x)
    print("k =\\n", k)
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    ## The input and the kernel

    Here are the two grids as heatmaps, with every number written in its square. The input `x` has
    5 rows and 5 columns; the kernel `k` has 3 of each. We use **stride 1** (the kernel moves one
    square at a time) and **no padding** (the kernel never hangs over the edge of the input).
    """),
    given("""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), gridspec_kw={"width_ratios": [5, 3]})
    for ax, grid, title in zip(axes, (x, k), ("input x (5x5)", "kernel k (3x3)")):
        sns.heatmap(grid, annot=True, fmt=".0f", cmap="coolwarm", center=0, cbar=False,
                    square=True, linewidths=1, linecolor="white", ax=ax)
        ax.set_title(title)
    plt.show()
    """),
    given_md("""
    ## One output number, worked out

    Place the kernel over the top-left 3x3 patch of `x`, multiply each kernel weight with the input
    value underneath it, and add the nine products:

    | patch of `x` | kernel `k` | products |
    | :-: | :-: | :-: |
    | 1 0 2 | 1 0 -1 | 1 0 -2 |
    | 0 1 3 | 2 1 0 | 0 1 0 |
    | 2 1 0 | 0 -1 1 | 0 -1 0 |

    The products add up to 1 + 0 - 2 + 0 + 1 + 0 + 0 - 1 + 0 = **-1**: the top-left entry of the
    output. Now shift the kernel one column to the right and repeat, until it reaches the right
    edge; then go back to the left, one row down.

    How big is the output? Along one side the kernel fits in (5 - 3) / 1 + 1 = 3 positions, so the
    feature map is 3x3. The visualiser below shows every step: press play, or drag the slider, and
    watch which patch of the input each output entry comes from. (You can also change the stride
    and padding there; set them back to 1 and 0 for this exercise.)
    """),
    given("""
    ConvVisualiser(EXAMPLE_INPUT, EXAMPLE_KERNEL)
    """),
    given_md("""
    ## Task 1: the whole feature map (2 points)

    Compute all nine entries of the 3x3 output on paper, then write them below as a list of three
    rows, each row a list of three numbers. The top-left entry is the -1 from above.
    For example, `[[-1, 2, 3], [4, 5, 6], [7, 8, 9]]` has the right form (but the wrong numbers).
    """),
    solution("mc-conv-by-hand", """
    # conv_by_hand = [[-1, ..., ...], [..., ..., ...], [..., ..., ...]]
    ### BEGIN SOLUTION
    conv_by_hand = [[-1, 5, 9], [3, 4, 1], [3, 0, 3]]
    ### END SOLUTION
    """),
    tests("mc-test-conv-by-hand", 2,"""
    expected = checks.conv2d_reference(checks.example_input(), checks.example_kernel())
    checks.check_matrix("conv_by_hand", conv_by_hand, expected, reveal=False)
    print("conv_by_hand is right")
    """),
    given_md("""
    ## Task 2: max pooling (1 point)

    **Max pooling** slides a window over a feature map too, but instead of weights it simply keeps
    the largest value in the window. With a 2x2 window and **stride 2** the window jumps two
    squares at a time, so the windows do not overlap.

    How many windows fit into our 3x3 feature map? Along one side:
    floor((3 - 2) / 2) + 1 = floor(0.5) + 1 = **1**. A window must fit completely inside the input,
    and after the first window there is only one row (and one column) left: not enough for a
    second 2x2 window. PyTorch rounds *down* (the floor), so that last row and column are simply
    never looked at. The result is a 1x1 feature map.

    Write the max-pooled result as a 1x1 nested list: `pool_by_hand = [[value]]`.
    """),
    solution("mc-pool-by-hand", """
    # pool_by_hand = [[...]]
    ### BEGIN SOLUTION
    pool_by_hand = [[5]]
    ### END SOLUTION
    """),
    tests("mc-test-pool-by-hand", 1,"""
    conv = checks.conv2d_reference(checks.example_input(), checks.example_kernel())
    checks.check_matrix("pool_by_hand", pool_by_hand, checks.maxpool2d_reference(conv, 2, 2), reveal=False)
    print("pool_by_hand is right")
    """),
    given_md("""
    ## PyTorch's "convolution" does not flip the kernel

    In mathematics and signal processing, *convolution* first rotates the kernel by 180 degrees
    (flips it upside down and left to right) and then slides it. What you just did, and what
    `torch.nn.functional.conv2d` and `nn.Conv2d` do, skips that flip: strictly speaking it is a
    **cross-correlation**. Deep-learning libraries still call it convolution. The cell below shows
    both: PyTorch's result (the same numbers as yours), and the textbook convolution, which is
    PyTorch applied to the flipped kernel.
    """),
    given("""
    x_t = torch.tensor(x).reshape(1, 1, 5, 5)  # conv2d wants (batch, channels, height, width)
    k_t = torch.tensor(k).reshape(1, 1, 3, 3)  # weights as (out_channels, in_channels, kh, kw)
    print("PyTorch conv2d (cross-correlation):\\n", F.conv2d(x_t, k_t)[0, 0].numpy())
    print("textbook convolution (flipped kernel):\\n", F.conv2d(x_t, k_t.flip(-2, -1))[0, 0].numpy())
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    ### Question (2 points)

    A convolutional network learns its kernels from data. Explain why it makes no difference to such
    a network that PyTorch skips the flip. Then name one situation where the difference *does*
    matter. Write your answer in the cell below (double-click it to edit).
    """),
    answer("mc-flip-answer", 2, """
    *Model answer.* The kernel weights are learned, not chosen by hand. Flipping is a fixed
    rearrangement of the weights, so whatever a true convolution with kernel `w` computes, a
    cross-correlation computes with the flipped kernel, and gradient descent is just as able to find
    that flipped kernel. The set of functions the layer can represent, and the training dynamics, are
    identical; only the stored weights are rotated by 180 degrees.

    It matters whenever a kernel is given rather than learned or is moved between tools: a
    hand-designed filter from a textbook (an edge detector that is not symmetric, a shift or
    derivative kernel), or weights exchanged with a library that really convolves (for example
    `scipy.signal.convolve2d`), give mirrored results unless you flip them. Symmetric kernels (a box
    blur, a Gaussian) are unaffected.
    """),
    given_md("""
    ## Task 3: `conv2d_naive` (4 points)

    Now teach the computer what you did by hand. Write `conv2d_naive(x, k)`:

    * `x` is a 2-D NumPy array of shape `(H, W)` and `k` a 2-D array of shape `(kh, kw)`; neither has
      to be square, and the numbers are not necessarily whole.
    * Stride 1, no padding, no kernel flip: return a float array of shape `(H - kh + 1, W - kw + 1)`.
    * Use Python loops over the output positions; inside the loops NumPy slicing and `np.sum` are
      fine. Don't call PyTorch or SciPy here: the point is to see every step.

    Hint: the entry in row `i`, column `j` of the output comes from the patch `x[i:i + kh, j:j + kw]`.
    """),
    solution("mc-conv2d-naive", """
    def conv2d_naive(x, k):
        \"\"\"Cross-correlate the 2-D array x with the 2-D kernel k (stride 1, no padding).\"\"\"
        ### BEGIN SOLUTION
        x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
        kh, kw = k.shape
        out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
        return out
        ### END SOLUTION
    """),
    given_md("""
    Try it on the example before running the tests: it should reproduce your hand calculation.
    """),
    given("""
    conv2d_naive(x, k)
    """),
    tests("mc-test-conv2d-visible", 2,"""
    checks.check_conv2d(conv2d_naive, [
        checks.ConvCase(checks.example_input(), checks.example_kernel()),
        checks.ConvCase([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [0, 1, 0, 1, 0, 1], [2, 2, 2, 2, 2, 2]],
                        [[1, 0, -1], [0.5, 0.5, 0.5]]),  # a 4x6 input with a 2x3 kernel
        checks.ConvCase([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),  # 1x1 output
    ])
    print("conv2d_naive agrees with torch.nn.functional.conv2d on the visible cases")
    """),
    tests("mc-test-conv2d-hidden", 2,"""
    # When your notebook is graded, this cell also checks conv2d_naive against PyTorch on
    # random inputs and kernels of many shapes (non-square ones included).
    checks.check_conv2d(conv2d_naive, [checks.ConvCase([[1.5, 2], [3, 4]], [[2]])])  # a 1x1 kernel
    ### BEGIN HIDDEN TESTS
    checks.check_conv2d(conv2d_naive, checks.random_conv_cases(seed=1101, count=25))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## Task 4: `maxpool2d` (4 points)

    Write `maxpool2d(x, size, stride)` for a 2-D NumPy array `x`: a `size` x `size` window moves
    `stride` squares at a time and each output entry is the maximum inside the window.

    * Windows must fit entirely inside `x` (no padding). Along a side of length `n` that gives
      `(n - size) // stride + 1` windows: the floor rule from Task 2, so leftover rows or columns at
      the bottom and right are dropped.
    * `stride` can be smaller than `size` (overlapping windows) or larger (gaps between windows).
    * Return a float array.
    """),
    solution("mc-maxpool2d", """
    def maxpool2d(x, size, stride):
        \"\"\"Max-pool the 2-D array x with a size x size window moving stride squares at a time.\"\"\"
        ### BEGIN SOLUTION
        x = np.asarray(x, dtype=float)
        rows = (x.shape[0] - size) // stride + 1
        cols = (x.shape[1] - size) // stride + 1
        out = np.zeros((rows, cols))
        for i in range(rows):
            for j in range(cols):
                out[i, j] = x[i * stride:i * stride + size, j * stride:j * stride + size].max()
        return out
        ### END SOLUTION
    """),
    given("""
    maxpool2d(conv2d_naive(x, k), 2, 2)  # your Task 2 answer, computed
    """),
    tests("mc-test-maxpool2d-visible", 2,"""
    checks.check_maxpool2d(maxpool2d, [
        checks.PoolCase(checks.conv2d_reference(checks.example_input(), checks.example_kernel()), 2, 2),
        checks.PoolCase([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]], 2, 2),
        checks.PoolCase([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [0, 7, 0, 7, 0, 7], [3, 3, 9, 3, 3, 3],
                         [1, 1, 1, 1, 1, 8]], 3, 1),  # overlapping windows
        checks.PoolCase([[-1, -2, -3, -4, -5], [-6, -7, -8, -9, -10], [-3, -1, -4, -1, -5], [-9, -2, -6, -5, -3]],
                        2, 3),  # gaps between windows, all negative
    ])
    print("maxpool2d agrees with torch.nn.functional.max_pool2d on the visible cases")
    """),
    tests("mc-test-maxpool2d-hidden", 2,"""
    # When your notebook is graded, this cell also checks maxpool2d against PyTorch on random
    # inputs, window sizes and strides, including strides that do not divide the input.
    checks.check_maxpool2d(maxpool2d, [checks.PoolCase([[1.5, 2], [3, 4]], 1, 1)])  # a 1x1 window
    ### BEGIN HIDDEN TESTS
    checks.check_maxpool2d(maxpool2d, checks.random_pool_cases(seed=1102, count=25))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## What you have seen

    * A convolution output entry is a sum of products between the kernel and one patch of the input;
      a 3x3 kernel on a 5x5 input with stride 1 and no padding gives 3x3 outputs.
    * Max pooling keeps the largest value per window; the output size is rounded down, so leftovers
      at the edges are dropped.
    * PyTorch's convolution is a cross-correlation: no kernel flip.

    The next notebook, *output_dimensions*, turns the "how big is the output" question into a formula
    that also covers padding, stride and several channels.
    """),
]
