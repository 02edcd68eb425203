"""What the three methods share: the run monitor and result (``run``), the
finishing step that certifies a near-optimal iterate (``polish``), and the
compiled loss and penalty kernels (``_loss.pxd``, ``_penalty.pxd``)."""
