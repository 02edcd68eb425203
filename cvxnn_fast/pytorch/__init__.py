"""R-FISTA on PyTorch devices (CPU, CUDA), in one process or data-parallel.

* ``fast_solve(problem, device="cuda")`` (:mod:`.solver`): one process, one
  device.
* :mod:`.distributed`: the rows sharded over ``torch.distributed``
  processes (``torchrun``; NCCL on GPUs, Gloo on CPUs), each loading only its
  shard: :func:`~.distributed.build_sharded_problem` and
  :func:`~.distributed.solve_sharded`.

PyTorch is optional: nothing outside this package imports it, and this
package imports it only when a solve asks for a device.
"""
