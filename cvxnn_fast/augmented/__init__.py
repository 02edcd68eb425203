"""The augmented Lagrangian method for the ReLU program (cone constraints
priced by multipliers; each subproblem solved by the R-FISTA loop)."""
