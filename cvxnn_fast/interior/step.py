"""One step of the interior-point method: the iterate and its Newton direction.

:class:`Iterate` holds the primal point, slacks and multipliers;
:class:`Newton` their residuals at one point and Mehrotra's
predictor-corrector direction through one factorization of the system of
:mod:`cvxnn_fast.interior.newton_system`. The loop around them is
:func:`cvxnn_fast.interior.solver.solve`.
"""

import numpy as np

from cvxnn_fast.interior import conic
from cvxnn_fast.interior.newton_system import REFINE_TOL


class Iterate:
    """Primal ``x`` (B, o + d) = ``[t_b, u_b]`` per block, slacks ``s`` and
    multipliers ``z`` of the orthant (B, n) and of the second-order cones
    (B, d + 1), whose points are the rows of x itself.
    """

    def __init__(self, system):
        B, d, o, n = system.n_blocks, system.d, system.offset, system.n_cone_rows
        self.x = np.zeros((B, o + d))
        # An infeasible start: unit slacks, multipliers on the scale of the
        # 1/n-scaled data fit.
        self.s_lin = np.ones((B, n))
        self.z_lin = np.full((B, n), 1.0 / system.n)
        self.z_lin[:, system.n_data_rows:] = max(system.lam, 1.0 / system.n)
        self.s_soc = conic.soc_identity(B if system.soc else 0, o + d)
        self.t = np.zeros(0)  # the fgl1 cones' scalars (t eliminated in solves)
        if system.fgl1:
            m = system.gather(self.x).shape
            self.s_soc = conic.soc_identity(m[0], m[1] + 1)
            self.t = np.zeros(m[0])
        self.z_soc = system.lam * self.s_soc
        self.degree = B * n + len(self.s_soc)

    def complementarity(self):
        return float(np.sum(self.s_lin * self.z_lin) + np.sum(self.s_soc * self.z_soc))

    def max_step(self, direction):
        _, ds_lin, ds_soc, dz_lin, dz_soc, _ = direction
        return min(conic.max_step_orthant(self.s_lin, ds_lin),
                   conic.max_step_orthant(self.z_lin, dz_lin),
                   conic.max_step_soc(self.s_soc, ds_soc),
                   conic.max_step_soc(self.z_soc, dz_soc))

    def move(self, direction, alpha):
        for value, delta in zip((self.x, self.s_lin, self.s_soc, self.z_lin,
                                 self.z_soc, self.t), direction, strict=True):
            value += alpha * delta
        conic.keep_interior(self.s_soc)
        conic.keep_interior(self.z_soc)


class Newton:
    """Residuals, scaling and directions at one iterate (one factorization)."""

    def __init__(self, system, it):
        self.system, self.it = system, it
        o = system.offset
        u = it.x[:, o:]
        self.Yhat = system.predict(u)
        r_x = np.zeros_like(it.x)
        r_x[:, o:] = system.gradient(self.Yhat) + system.ridge * u
        r_x -= system.cone_adjoint(it.z_lin)
        if system.l1:
            r_x[:, :o] += system.lam
        self.cones = system.cone(it.x)
        self.r_lin = it.s_lin - self.cones
        self.r_soc = it.s_soc - it.x if system.soc else it.s_soc
        if system.soc:
            r_x -= it.z_soc
            r_x[:, 0] += system.lam
        if system.fgl1:
            r_x -= system.scatter(it.z_soc[:, 1:])
            self.r_t = system.lam - it.z_soc[:, 0]
            self.r_soc = it.s_soc - np.column_stack([it.t, system.gather(u)])
        self.r_x = r_x
        self.complementarity = it.complementarity()
        self.mu = self.complementarity / max(it.degree, 1)
        self.refine_tol = REFINE_TOL  # solve() accuracy; set per iteration

    def factor(self):
        it, system = self.it, self.system
        self.w = it.z_lin / it.s_lin
        self.scaling = None
        if system.cones:
            self.scaling = conic.SOCScaling(it.s_soc, it.z_soc)
            self.lam_soc = self.scaling.lam
        system.factor(self.w, self.scaling, self.Yhat)

    def direction(self, rc_lin, xi_soc):
        """Solve the Newton system whose complementarity rows are
        ``z ds + s dz = rc_lin`` (orthant; NT-scaled, that is
        ``W dz + W^-1 ds = rc / lam``) and ``W dz + W^-1 ds = xi_soc`` (cones).

        Returns (dx, ds_lin, ds_soc, dz_lin, dz_soc); the slack steps come from
        the primal equations ``G dx + ds = -r_p``.
        """
        system, o = self.system, self.system.offset
        y_lin = self.w * self.r_lin + rc_lin / self.it.s_lin
        b = -self.r_x
        b += system.cone_adjoint(y_lin)
        y_soc = np.zeros((0, o + system.d))
        if system.cones:
            y_soc = (self.scaling.apply_inverse_squared(self.r_soc)
                     + self.scaling.apply_inverse(xi_soc))
        if system.soc:
            b += y_soc
        if system.fgl1:
            return self._fgl1_direction(b, y_soc, y_lin)
        dx = system.solve(b, self.refine_tol)
        G_lin = -system.cone(dx)
        dz_lin = self.w * G_lin + y_lin
        ds_lin = -self.r_lin - G_lin
        if system.soc:
            dz_soc = y_soc - self.scaling.apply_inverse_squared(dx)
            ds_soc = dx - self.r_soc
        else:
            dz_soc = ds_soc = y_soc
        return dx, ds_lin, ds_soc, dz_lin, dz_soc, self.it.t[:0]

    def _fgl1_direction(self, b, y_soc, y_lin):
        """The direction with the fgl1 cones' scalars t eliminated: with
        ``W^-2 = [[a, c^T], [c, .]]`` per cone, ``dt = (b_t - c^T du) / a``,
        and the u-system gets ``b_u - c b_t / a`` (its matrix, the
        eliminated one, is factored in :meth:`system.factor`)."""
        system, scaling = self.system, self.scaling
        b = b + system.scatter(y_soc[:, 1:])
        b_t = -self.r_t + y_soc[:, 0]
        w0, w1, eta2 = scaling.w[:, 0], scaling.w[:, 1:], scaling.eta**2
        a = (2.0 * w0**2 - 1.0) / eta2
        c = -2.0 * w0[:, None] * w1 / eta2[:, None]
        b -= system.scatter(c * (b_t / a)[:, None])
        du = system.solve(b, self.refine_tol)
        dt = (b_t - np.sum(c * system.gather(du), axis=1)) / a
        d_cone = np.column_stack([dt, system.gather(du)])
        G_lin = -system.cone(du)
        dz_lin = self.w * G_lin + y_lin
        ds_lin = -self.r_lin - G_lin
        ds_soc = d_cone - self.r_soc
        dz_soc = y_soc - scaling.apply_inverse_squared(d_cone)
        return du, ds_lin, ds_soc, dz_lin, dz_soc, dt

    def predictor_corrector(self):
        """Mehrotra's direction: affine step, centering, second-order correction."""
        it, system = self.it, self.system
        affine = self.direction(-it.s_lin * it.z_lin,
                                -self.lam_soc if system.cones else None)
        if it.degree == 0:  # no cones (gated ReLU, l2): a Newton step
            return affine
        alpha = min(1.0, it.max_step(affine))
        _, ds_lin, ds_soc, dz_lin, dz_soc, _ = affine
        gap = (np.sum((it.s_lin + alpha * ds_lin) * (it.z_lin + alpha * dz_lin))
               + np.sum((it.s_soc + alpha * ds_soc) * (it.z_soc + alpha * dz_soc)))
        sigma = min(1.0, gap / (self.mu * it.degree)) ** 3
        target = sigma * self.mu
        # Orthant: lam o lam = s z and (W^-1 ds) o (W dz) = ds dz.
        rc_lin = target - it.s_lin * it.z_lin - ds_lin * dz_lin
        xi_soc = None
        if system.cones:
            rc_soc = -(conic.soc_product(self.lam_soc, self.lam_soc)
                       + conic.soc_product(self.scaling.apply_inverse(ds_soc),
                                           self.scaling.apply(dz_soc)))
            rc_soc[:, 0] += target  # + target e
            xi_soc = conic.soc_divide(self.lam_soc, rc_soc)
        return self.direction(rc_lin, xi_soc)
