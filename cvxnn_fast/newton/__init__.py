"""Newton-CG with a Kronecker preconditioner for large gated ReLU programs."""
