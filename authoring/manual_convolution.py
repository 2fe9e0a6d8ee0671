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
       which are then compared with PyTorch's own `conv2d` and `max_pool2d`,
    4. convolve an input of two channels with two filters, by hand and in code,
    5. compute a convolution as one matrix product (`unfold`), the way libraries do, and
    6. work out the gradient of a convolution with respect to its input, which brings back the
       kernel flip that PyTorch's convolution leaves out.
    """),
    given_md("""
    **How this notebook works.** Grey cells with a lock are read-only: run them, don't edit them.
    Cells that say `# YOUR CODE HERE` (or *YOUR ANSWER HERE*) are yours: replace the
    `raise NotImplementedError()` line with your answer. After each of your cells comes a test cell;
    run it to check your work. A test cell that passes prints a line saying so (a cell of hidden
    cases prints nothing); one that fails ends in an error that says what is wrong. Those hidden
    cases only run when your notebook is graded, so make your functions work in general, not just
    on the visible examples. Run the cells from top to bottom (*Run → Run All Cells* is fine).
    """),
    given("""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns
    import torch
    import torch.nn.functional as F

    from convcourse.convviz import MULTI_FILTERS, MULTI_INPUT
    from convcourse.widgets import EDGE_KERNEL, EXAMPLE_INPUT, EXAMPLE_KERNEL, GIF_INPUT, GIF_KERNEL, ConvVisualiser

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

    So that the numbers of `x` stay yours to work out, here is one entry on another 5x5 input: the
    0/1 image of the original lab's animated example (`GIF_INPUT`, in the visualiser below), with
    your kernel `k`. Place the kernel over the image's top-left 3x3 patch, multiply each kernel
    weight with the value underneath it, and add the nine products:

    | patch of the image | kernel `k` | products |
    | :-: | :-: | :-: |
    | 1 1 1 | 1 0 -1 | 1 0 -1 |
    | 0 1 1 | 2 1 0 | 0 1 0 |
    | 0 0 1 | 0 -1 1 | 0 0 1 |

    The products add up to 1 + 0 - 1 + 0 + 1 + 0 + 0 + 0 + 1 = **2**: the top-left entry of that
    output. Now shift the kernel one column to the right and repeat, until it reaches the right
    edge; then go back to the left, one row down.

    How big is the output? Along one side the kernel fits in (5 - 3) / 1 + 1 = 3 positions, so the
    feature map is 3x3, for the image and for your `x` alike.
    """),
    given_md("""
    The visualiser below shows every step of a convolution on the lab's animated example: the same
    0/1 image and its X-shaped kernel (the Stanford animation the original lab links to). Press
    play, or drag the slider, and watch which patch of the input each output entry comes from and
    how its sum is made. It is not your input, so its numbers are not your answer. Change the
    stride and padding there too and see the output grow and shrink;
    [conv_arithmetic](https://github.com/vdumoulin/conv_arithmetic) by Vincent Dumoulin animates
    the same settings (and more) for larger grids.
    """),
    given("""
    ConvVisualiser(GIF_INPUT, GIF_KERNEL)
    """),
    given_md("""
    ## Task 1: the whole feature map (2 points)

    Compute all nine entries of the 3x3 output of `x` and `k` on paper, then write them below as a
    list of three rows, each row a list of three numbers. For example,
    `[[1, 2, 3], [4, 5, 6], [7, 8, 9]]` has the right form (but the wrong numbers).
    """),
    solution("mc-conv-by-hand", """
    # conv_by_hand = [[..., ..., ...], [..., ..., ...], [..., ..., ...]]
    ### BEGIN SOLUTION
    conv_by_hand = [[-1, 5, 9], [3, 4, 1], [3, 0, 3]]
    ### END SOLUTION
    """),
    tests("mc-test-conv-by-hand", 2,"""
    checks.check_conv_by_hand(conv_by_hand)
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
    checks.check_pool_by_hand(pool_by_hand)
    print("pool_by_hand is right")
    """),
    given_md("""
    ## PyTorch's "convolution" does not flip the kernel

    In mathematics and signal processing, *convolution* first rotates the kernel by 180 degrees
    (flips it upside down and left to right) and then slides it. What you just did, and what
    `torch.nn.functional.conv2d` and `nn.Conv2d` do, skips that flip: strictly speaking it is a
    **cross-correlation**. Deep-learning libraries still call it convolution. The cell below shows
    both on the animation's image with a textbook edge detector (a Sobel kernel, which responds
    where the image gets darker from left to right): PyTorch's result, and the textbook
    convolution, which is PyTorch applied to the flipped kernel.
    """),
    given("""
    image = torch.tensor(GIF_INPUT, dtype=torch.float64).reshape(1, 1, 5, 5)  # (batch, channels, height, width)
    edge = torch.tensor(EDGE_KERNEL, dtype=torch.float64).reshape(1, 1, 3, 3)  # (out_channels, in_channels, kh, kw)
    print("edge kernel:\\n", edge[0, 0].numpy())
    print("PyTorch conv2d (cross-correlation):\\n", F.conv2d(image, edge)[0, 0].numpy())
    print("textbook convolution (flipped kernel):\\n", F.conv2d(image, edge.flip(-2, -1))[0, 0].numpy())
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
    Try it on the visualiser's example before running the tests: it should give the output the
    visualiser shows at the end of its animation.
    """),
    given("""
    gif, gif_k = np.array(GIF_INPUT, dtype=float), np.array(GIF_KERNEL, dtype=float)  # the visualiser's input, kernel
    conv2d_naive(gif, gif_k)
    """),
    tests("mc-test-conv2d-visible", 2,"""
    checks.check_conv2d(conv2d_naive, [
        checks.ConvCase(checks.course_grid("GIF_INPUT"), checks.example_kernel()),  # the animation's image, Task 1's kernel
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
    maxpool2d(conv2d_naive(gif, gif_k), 2, 2)  # the visualiser's output, pooled as in Task 2
    """),
    tests("mc-test-maxpool2d-visible", 2,"""
    checks.check_maxpool2d(maxpool2d, [
        checks.PoolCase([[1, 6, 2], [7, 3, 8], [0, 9, 4]], 2, 2),  # a 3x3 map, like Task 2's
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
    ## Task 5: several input channels (4 points)

    Task 1's kernel is really a filter of shape `(1, 3, 3)`: one 3x3 kernel for the one channel of
    a grey image. A colour image has 3 channels, and the feature maps after a first convolutional
    layer have as many channels as it has filters (32 in the convolutional models of the third
    notebook, *cnn_experiments*). A filter then has the shape `(C_in, kh, kw)`: **one kernel per
    input channel**. It slides over all channels at once, each kernel over its own channel, and
    adds everything up (plus one bias, left out here), so each filter gives one output channel
    whatever `C_in` is:

    $$\\text{out}[o] = \\sum_{c} \\text{conv}(x[c],\\ w[o, c])$$

    A layer of `C_out` filters stores its weights as one array of shape `(C_out, C_in, kh, kw)`:
    exactly the shape of `nn.Conv2d(C_in, C_out, (kh, kw)).weight`.
    """),
    given_md("""
    Below, `x2` has 2 channels of 3x3 and `w2` holds 2 filters of shape `(2, 2, 2)`. One entry of
    filter 0, worked out on another input whose top-left 2x2 patches are `[[3, 1], [2, 1]]` in
    channel 0 and `[[1, 3], [2, 0]]` in channel 1: channel 0 gives 3·1 + 1·0 + 2·0 + 1·(-1) = 2 with
    `w2[0, 0]`, channel 1 gives 1·2 + 3·1 + 2·0 + 0·0 = 5 with `w2[0, 1]`, so that entry is
    2 + 5 = **7**. Your `x2` works the same way, patch by patch and filter by filter.
    """),
    given("""
    x2 = np.array(MULTI_INPUT, dtype=float)    # (C_in, H, W) = (2, 3, 3)
    w2 = np.array(MULTI_FILTERS, dtype=float)  # (C_out, C_in, kh, kw) = (2, 2, 2, 2)
    for c in range(2):
        print(f"x2[{c}] =\\n{x2[c]}")
    for o in range(2):
        for c in range(2):
            print(f"w2[{o}, {c}] (filter {o}, input channel {c}) =\\n{w2[o, c]}")
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    Work out the whole output by hand: 2 output channels of 2x2, one list of rows per channel.
    """),
    solution("mc-multi-by-hand", """
    # multi_by_hand = [[[..., ...], [..., ...]], [[..., ...], [..., ...]]]  # channel 0, then channel 1
    ### BEGIN SOLUTION
    multi_by_hand = [[[1, 2], [4, 1]], [[1, 3], [11, 2]]]
    ### END SOLUTION
    """),
    tests("mc-test-multi-by-hand", 2, """
    checks.exercises().check_multi_by_hand(multi_by_hand)
    print("multi_by_hand is right")
    """),
    given_md("""
    Now in code: write `conv2d_multi(x, w)` for `x` of shape `(C_in, H, W)` and `w` of shape
    `(C_out, C_in, kh, kw)`, returning a float array of shape `(C_out, H - kh + 1, W - kw + 1)`.
    Build it on your `conv2d_naive`: no new loops over pixels are needed.
    """),
    solution("mc-conv2d-multi", """
    def conv2d_multi(x, w):
        \"\"\"Convolve the (C_in, H, W) array x with the filters w of shape (C_out, C_in, kh, kw).\"\"\"
        ### BEGIN SOLUTION
        return np.array([sum(conv2d_naive(x[c], f[c]) for c in range(len(x))) for f in w])
        ### END SOLUTION
    """),
    tests("mc-test-conv2d-multi", 1, """
    ex = checks.exercises()
    ex.check_conv2d_multi(conv2d_multi, [
        ex.MultiCase([checks.course_grid("GIF_INPUT"),
                      [[2, 0, 1, 0, 3], [1, 1, 0, 2, 0], [0, 3, 1, 0, 1], [2, 0, 0, 1, 1], [1, 2, 3, 0, 0]]],
                     [[checks.course_grid("GIF_KERNEL"), checks.course_grid("EDGE_KERNEL")]]),  # 2 channels, 1 filter
        ex.MultiCase([[[1, 2, 3, 4], [5, 6, 7, 8]]], [[[[1, -1]]], [[[0.5, 2]]], [[[3, 0]]]]),  # 1 channel, 3 filters
    ])
    print("conv2d_multi agrees with PyTorch on the visible cases")
    """),
    tests("mc-test-conv2d-multi-hidden", 1, """
    # When your notebook is graded, this cell also checks conv2d_multi on random inputs of 1-3 channels.
    ex = checks.exercises()
    ex.check_conv2d_multi(conv2d_multi, [ex.MultiCase([[[1.5, 2], [3, 4]]] * 2, [[[[1]], [[-1]]]])])
    ### BEGIN HIDDEN TESTS
    ex.check_conv2d_multi(conv2d_multi, ex.random_multi_cases(seed=1103, count=20))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## Task 6: convolution as one matrix product (2 points)

    Loops over pixels are slow. Libraries turn a convolution into a single matrix product instead
    (*im2col*). `F.unfold(x, (kh, kw))` cuts every `kh` x `kw` patch of a batch `x` of shape
    `(N, C_in, H, W)`, all channels of it, into one column: the result has the shape
    `(N, C_in * kh * kw, L)`, where `L = H_out * W_out` counts the kernel's positions. Each patch is
    listed channel by channel, each channel row by row, the same order in which
    `w.reshape(C_out, -1)` lists a filter's weights. So one product of the filters, one per row,
    with the patches, one per column, gives every output at once: `(C_out, C_in*kh*kw) @
    (N, C_in*kh*kw, L)` is `(N, C_out, L)`, and a reshape to `(N, C_out, H_out, W_out)` finishes the
    job. The cell below unfolds the animation's 5x5 image: 9 values per patch, 9 positions.
    """),
    given("""
    patches = F.unfold(torch.tensor(GIF_INPUT, dtype=torch.float64).reshape(1, 1, 5, 5), (3, 3))
    print("unfolded:", tuple(patches.shape))
    print("column 0, the top-left patch read row by row:", patches[0, :, 0].tolist())
    # NBVAL_CHECK_OUTPUT
    """),
    given_md("""
    Write `conv2d_unfold(x, w)` for float tensors `x` of shape `(N, C_in, H, W)` and `w` of shape
    `(C_out, C_in, kh, kw)` (stride 1, no padding), with `F.unfold`, one matrix product (`@`) and
    reshapes. Calling `F.conv2d` (or `nn.Conv2d`) is not allowed here: the tests check that you
    don't.
    """),
    solution("mc-conv2d-unfold", """
    def conv2d_unfold(x, w):
        \"\"\"conv2d(x, w) for a batch x (N, C_in, H, W) and filters w (C_out, C_in, kh, kw), as a matrix product.\"\"\"
        ### BEGIN SOLUTION
        n, _, height, width = x.shape
        c_out, _, kh, kw = w.shape
        out = w.reshape(c_out, -1) @ F.unfold(x, (kh, kw))  # (N, C_out, L)
        return out.reshape(n, c_out, height - kh + 1, width - kw + 1)
        ### END SOLUTION
    """),
    tests("mc-test-conv2d-unfold", 1, """
    ex = checks.exercises()
    ex.check_conv2d_unfold(conv2d_unfold, [
        ex.BatchCase([[checks.course_grid("GIF_INPUT")]], [[checks.course_grid("EDGE_KERNEL")]]),
        ex.BatchCase([[[[1, 2, 3, 4, 5], [5, 6, 7, 8, 9], [9, 10, 11, 12, 13]],
                       [[0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [2, 2, 2, 2, 2]]]],
                     [[[[1, 0, -1], [0, 1, 0]], [[2, 0, 0], [0, 0, -2]]]]),  # 2 channels, a 2x3 output
    ])
    print("conv2d_unfold agrees with PyTorch on the visible cases")
    """),
    tests("mc-test-conv2d-unfold-hidden", 1, """
    # When your notebook is graded, this cell also checks conv2d_unfold on random batches and filters.
    ex = checks.exercises()
    ex.check_conv2d_unfold(conv2d_unfold, [ex.BatchCase([[[[1.5, 2], [3, 4]]]] * 2, [[[[1]]], [[[-2]]]])])
    ### BEGIN HIDDEN TESTS
    ex.check_conv2d_unfold(conv2d_unfold, ex.random_batch_cases(seed=1104, count=20))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## Task 7: the gradient brings the flip back (2 points)

    To learn, a network needs the gradient of the loss with respect to every layer's input. Take
    `y = conv2d(x, k)` (one channel, stride 1, no padding) and let `g` be the gradient of the loss
    with respect to `y`, of the same shape as `y`. Input pixel `x[a, b]` is used by every output
    `y[i, j]` whose patch covers it, multiplied there by the weight `k[a - i, b - j]`, so

    $$\\frac{\\partial L}{\\partial x[a, b]} = \\sum_{i, j} g[i, j]\\, k[a - i, b - j]$$

    over the outputs that use it. The indices of `k` run *backwards* as `i` grows: this is a true
    convolution, kernel flip included, of `g` padded with `kh - 1` rows and `kw - 1` columns of
    zeros on each side (a **full** convolution), so the result has the input's shape. In code:
    your `conv2d_naive` on the padded `g` with the kernel rotated by 180 degrees.

    Write `conv2d_input_grad(g, k)` for NumPy arrays `g` (shape `(H_out, W_out)`) and `k`
    (shape `(kh, kw)`), returning the float array of shape `(H_out + kh - 1, W_out + kw - 1)`.
    `np.pad` pads and `k[::-1, ::-1]` rotates.
    """),
    solution("mc-conv2d-input-grad", """
    def conv2d_input_grad(g, k):
        \"\"\"dL/dx of y = conv2d(x, k) (stride 1, no padding) for g = dL/dy: a full convolution with the flipped k.\"\"\"
        ### BEGIN SOLUTION
        kh, kw = k.shape
        return conv2d_naive(np.pad(g, ((kh - 1, kh - 1), (kw - 1, kw - 1))), k[::-1, ::-1])
        ### END SOLUTION
    """),
    given_md("""
    The gradient check: PyTorch's autograd differentiates `conv2d` on random numbers, and your
    function should give the same gradient (a largest difference around 1e-15, rounding).
    """),
    given("""
    torch.manual_seed(0)
    x_r = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    k_r = torch.randn(2, 3, dtype=torch.float64)
    y_r = F.conv2d(x_r.reshape(1, 1, 5, 6), k_r.reshape(1, 1, 2, 3))[0, 0]
    g_r = torch.randn_like(y_r)
    y_r.backward(g_r)  # autograd: x_r.grad = dL/dx for dL/dy = g_r
    mine = conv2d_input_grad(g_r.numpy(), k_r.numpy())
    print("largest difference from autograd:", float(np.abs(mine - x_r.grad.numpy()).max()))
    """),
    tests("mc-test-conv2d-input-grad", 1, """
    ex = checks.exercises()
    ex.check_conv2d_input_grad(conv2d_input_grad, [
        ex.GradCase([[1, 0], [0, 0]], checks.course_grid("EDGE_KERNEL")),  # one output's gradient: k rotated
        ex.GradCase([[1, -2, 0.5]], [[1, 2], [3, 4]]),
    ])
    print("conv2d_input_grad is the gradient on the visible cases")
    """),
    tests("mc-test-conv2d-input-grad-hidden", 1, """
    # When your notebook is graded, this cell also checks conv2d_input_grad on random gradients and kernels.
    ex = checks.exercises()
    ex.check_conv2d_input_grad(conv2d_input_grad, [ex.GradCase([[2.5]], [[1, 2, 3]])])
    ### BEGIN HIDDEN TESTS
    ex.check_conv2d_input_grad(conv2d_input_grad, ex.random_grad_cases(seed=1105, count=25))
    ### END HIDDEN TESTS
    """),
    given_md("""
    ## What you have seen

    * A convolution output entry is a sum of products between the kernel and one patch of the input;
      a 3x3 kernel on a 5x5 input with stride 1 and no padding gives 3x3 outputs.
    * Max pooling keeps the largest value per window; the output size is rounded down, so leftovers
      at the edges are dropped.
    * PyTorch's convolution is a cross-correlation: no kernel flip.
    * A filter has one kernel per input channel and sums their results: weights of shape
      `(C_out, C_in, kh, kw)`, one output channel per filter.
    * `unfold` turns a convolution into one matrix product of filters (rows) and patches (columns).
    * The gradient with respect to the input is a full convolution of the output's gradient with the
      flipped kernel: the flip is where backpropagation puts it.

    The next notebook, *output_dimensions*, turns the "how big is the output" question into a formula
    that also covers padding, stride and several channels.
    """),
]
