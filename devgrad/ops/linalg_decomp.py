"""``dg.linalg``'s decompositions: cholesky, eigh, svd, qr, and lstsq built on them.

A decomposition with several outputs is one op whose output packs them (flattened, side by side
along the last axis); the parts the user sees are slices of it, so the backward receives the
gradients of all parts at once and reads the parts it needs from its own output, which keeps it
differentiable again. Gradients are HIPS autograd's / JAX's / PyTorch's formulas; eigh and svd
need distinct eigen/singular values where the gradient reaches the vectors, and raise a clear
error at repeated ones (PyTorch returns inf or NaN there).
"""

from __future__ import annotations

import collections

import numpy as np

from devgrad.core import Function, Tensor
from devgrad.ops.elementwise import Where
from devgrad.ops.linalg import matmul
from devgrad.ops.linalg_solve import check_square, mT, pinv, solve, xp_linalg
from devgrad.ops.shape import concatenate

EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = collections.namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = collections.namedtuple("QRResult", ["Q", "R"])


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class _Packed(Function):
    """A decomposition whose parts (of ``shapes``, after the batch axes) are packed in one output."""

    __slots__ = ("batch", "shapes")
    save_inputs = True
    save_output = True

    def pack(self, parts, batch):
        self.batch, self.shapes = batch, [p.shape[len(batch):] for p in parts]
        # each part's size spelled out: -1 is ambiguous when the batch is empty
        return self.device.xp.concatenate([p.reshape(*batch, _size(shape)) for p, shape in zip(parts, self.shapes)],
                                          axis=-1)

    def unpack(self, packed) -> list:
        """The parts of a packed tensor (the output, or its gradient), as slices reshaped."""
        return _unpack(packed, self.batch, self.shapes)


def _unpack(packed, batch: tuple, shapes: list) -> list:
    """Slices of the last axis of ``packed`` (a Tensor or an array), reshaped to ``batch + shape``."""
    out, start = [], 0
    for shape in shapes:
        size = _size(shape)
        out.append(packed[..., start:start + size].reshape(*batch, *shape))
        start += size
    return out


def _off_diagonal(n: int, xp):
    return ~xp.eye(n, dtype=bool)


def _reciprocal_gaps(values: Tensor, squared: bool, op: str) -> Tensor:
    """F[i, j] = 1 / (v_j - v_i) off the diagonal (of v² for singular values), 0 on it; repeated
    values make the gradient of the vectors undefined: a clear error."""
    v = values * values if squared else values
    gaps = v.reshape(*v.shape[:-1], 1, v.shape[-1]) - v.reshape(*v.shape, 1)
    off = _off_diagonal(v.shape[-1], values.xp)
    if bool(((gaps.data == 0) & off).any()):
        raise np.linalg.LinAlgError(
            f"dg.linalg.{op}: the gradient through the {'singular' if squared else 'eigen'}vectors is undefined at "
            "repeated values (the vectors are not unique there); differentiate only the values, or perturb the input")
    safe = Where.apply(gaps, 1.0, cond=off)
    return Where.apply(1.0 / safe, 0.0, cond=off)


def _is_zero(g) -> bool:
    return not bool((g.data != 0).any())


def _adds_nothing(g) -> bool:
    """Can a vector cotangent's term be left out? Only when it is zero and nothing differentiates
    through it: forward mode (``devgrad.func``) starts from zero cotangents that require grad, and
    the term's derivative with respect to them is the whole answer."""
    return not getattr(g, "requires_grad", False) and _is_zero(g)


class Cholesky(Function):
    """The lower factor L (A = L Lᵀ); gradient L⁻ᵀ Φ(Lᵀ g) L⁻¹ made symmetric (Φ: the lower triangle
    with half the diagonal), for symmetric positive-definite A."""

    __slots__ = ("upper",)
    save_output = True

    def forward(self, a, upper):
        check_square(a, "cholesky")
        self.upper = upper
        try:
            low = xp_linalg(self.device, "cholesky")(a)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError("dg.linalg.cholesky: the matrix is not positive definite") from None
        return low.swapaxes(-1, -2) if upper else low

    def backward(self, g):
        low = mT(self.output()) if self.upper else self.output()
        g = mT(g) if self.upper else g
        xp = self.device.xp
        n = low.shape[-1]
        inner = matmul(mT(low), g)
        half = Where.apply(inner, 0.0, cond=xp.tri(n, dtype=bool))
        half = half - Where.apply(half * 0.5, 0.0, cond=xp.eye(n, dtype=bool))
        low_inv = solve(low, _eye_like(low))
        s = matmul(mT(low_inv), matmul(half, low_inv))
        return (s + mT(s)) * 0.5


def _eye_like(a: Tensor) -> Tensor:
    return Tensor._make(a.xp.broadcast_to(a.xp.eye(a.shape[-1], dtype=a.dtype), a.shape).copy(), a.device)


class Eigh(_Packed):
    """Eigenvalues and eigenvectors of symmetric matrices. Gradient V (diag(gw) + F ∘ skew(Vᵀ gV)) Vᵀ
    (symmetric, PyTorch's form), F[i, j] = 1 / (w_j - w_i)."""

    __slots__ = ()

    @staticmethod
    def part_shapes(shape, uplo="L"):
        return [shape[-1:], shape[-2:]]

    def forward(self, a, uplo):
        check_square(a, "eigh")
        w, v = xp_linalg(self.device, "eigh")(a, UPLO=uplo)
        return self.pack([w, v], a.shape[:-2])

    def backward(self, g):
        gw, gv = self.unpack(g)
        w, v = self.unpack(self.output())
        grad = matmul(v * gw.reshape(*gw.shape[:-1], 1, gw.shape[-1]), mT(v))
        if not _adds_nothing(gv):
            vtgv = matmul(mT(v), gv)
            inner = _reciprocal_gaps(w, False, "eigh") * ((vtgv - mT(vtgv)) * 0.5)
            grad = grad + matmul(v, matmul(inner, mT(v)))
        return grad


class Svd(_Packed):
    """U, S, Vh. Gradient (autograd's): U [diag(gS) + (F ∘ (UᵀgU − gUᵀU)) S + S (F ∘ (VᵀgV − gVᵀV))] Vh
    plus the parts outside U's or V's span, F[i, j] = 1 / (s_j² − s_i²)."""

    __slots__ = ("full",)

    @staticmethod
    def part_shapes(shape, full_matrices=False, hermitian=False):
        m, n = shape[-2:]
        k = min(m, n)
        return [(m, m if full_matrices else k), (k,), (n if full_matrices else k, n)]

    def forward(self, a, full_matrices, hermitian=False):
        if a.ndim < 2:
            raise np.linalg.LinAlgError(f"dg.linalg.svd: expects matrices in the last two axes, got shape {a.shape}")
        self.full = full_matrices
        options = {"hermitian": True} if hermitian else {}  # NumPy's eigh route (CuPy's svd has no such option)
        u, s, vh = xp_linalg(self.device, "svd")(a, full_matrices=full_matrices, **options)
        return self.pack([u, s, vh], a.shape[:-2])

    def backward(self, g):
        gu, gs, gvh = self.unpack(g)
        u, s, vh = self.unpack(self.output())
        m, n = self.inputs[0].shape[-2:]
        k = min(m, n)
        if self.full and m != n:
            extra = gu[..., :, k:] if m > n else gvh[..., k:, :]
            if not _is_zero(extra):
                raise np.linalg.LinAlgError("dg.linalg.svd: with full_matrices=True the extra columns of U (or rows "
                                            "of Vh) are not unique, so they have no gradient; use full_matrices=False")
            u, gu, vh, gvh = u[..., :, :k], gu[..., :, :k], vh[..., :k, :], gvh[..., :k, :]
        grad = matmul(u * gs.reshape(*gs.shape[:-1], 1, k), vh)
        if _adds_nothing(gu) and _adds_nothing(gvh):
            return grad
        return grad + self._vectors_grad(u, s, vh, gu, gvh, m, n)

    def _vectors_grad(self, u, s, vh, gu, gvh, m, n):
        f = _reciprocal_gaps(s, True, "svd")
        v, gv = mT(vh), mT(gvh)
        utgu, vtgv = matmul(mT(u), gu), matmul(mT(v), gv)
        k = s.shape[-1]
        s_row, s_col = s.reshape(*s.shape[:-1], 1, k), s.reshape(*s.shape, 1)
        inner = (f * (utgu - mT(utgu))) * s_row + s_col * (f * (vtgv - mT(vtgv)))
        grad = matmul(u, matmul(inner, vh))
        if m != n and bool((s.data == 0).any()):
            raise np.linalg.LinAlgError("dg.linalg.svd: the gradient through U or Vh of a non-square matrix is "
                                        "undefined at a zero singular value")
        if m > n:
            grad = grad + matmul((gu - matmul(u, utgu)) / s_row, vh)
        elif m < n:
            grad = grad + matmul(u, mT((gv - matmul(v, vtgv)) / s_row))
        return grad


class Qr(_Packed):
    """Q and R (reduced). Gradient (PyTorch's): [gQ + Q copyltu(M)] R⁻ᵀ, M = R gRᵀ − gQᵀ Q, for a
    tall or square matrix; a wide one splits into its square block and the rest."""

    __slots__ = ("complete",)

    @staticmethod
    def part_shapes(shape, complete=False):
        m, n = shape[-2:]
        k = m if complete else min(m, n)
        return [(m, k), (k, n)]

    def forward(self, a, complete):
        if a.ndim < 2:
            raise np.linalg.LinAlgError(f"dg.linalg.qr: expects matrices in the last two axes, got shape {a.shape}")
        self.complete = complete
        q, r = xp_linalg(self.device, "qr")(a, mode="complete" if complete else "reduced")
        return self.pack([q, r], a.shape[:-2])

    def backward(self, g):
        gq, gr = self.unpack(g)
        q, r = self.unpack(self.output())
        a = self.inputs[0]
        m, n = a.shape[-2:]
        if self.complete and m > n:
            raise np.linalg.LinAlgError("dg.linalg.qr: mode='complete' of a tall matrix is not differentiable (Q's "
                                        "extra columns are not unique); use mode='reduced'")
        if m >= n:
            return _qr_square_grad(q, r, gq, gr)
        y, gu, gv = a[..., :, m:], gr[..., :, :m], gr[..., :, m:]
        gx = _qr_square_grad(q, r[..., :, :m], gq + matmul(y, mT(gv)), gu)
        return concatenate([gx, matmul(q, gv)], axis=-1)


def _qr_square_grad(q, r, gq, gr):
    xp = q.xp
    n = r.shape[-1]
    m_ = matmul(r, mT(gr)) - matmul(mT(gq), q)
    lower = Where.apply(m_, 0.0, cond=xp.tri(n, dtype=bool))
    strictly = Where.apply(m_, 0.0, cond=xp.tri(n, k=-1, dtype=bool))
    b = gq + matmul(q, lower + mT(strictly))
    return mT(solve(r, mT(b)))


def cholesky(a: Tensor, upper: bool = False) -> Tensor:
    """``numpy.linalg.cholesky``: L with A = L Lᵀ (``upper=True``: U = Lᵀ) for symmetric positive-definite A.
    The gradient is symmetric and assumes a symmetric A (NumPy reads the lower triangle only)."""
    return Cholesky.apply(a, upper=upper)


def eigh(a: Tensor, UPLO: str = "L") -> EighResult:
    """``numpy.linalg.eigh``: (eigenvalues ascending, eigenvectors as columns) of symmetric matrices.
    The gradient assumes a symmetric A; through the eigenvectors it needs distinct eigenvalues."""
    if UPLO not in ("L", "U"):
        raise ValueError(f"dg.linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    return EighResult(*_parts(Eigh, a, uplo=UPLO))


def _parts(cls, a: Tensor, **params) -> list:
    out = cls.apply(a, **params)
    node = out.grad_fn if isinstance(out.grad_fn, cls) else None
    if node is not None:
        return node.unpack(out)
    parts = _unpack(out.data, a.shape[:-2], cls.part_shapes(a.shape, **params))  # nothing recorded: arrays
    return [Tensor._make(p, a.device) for p in parts]


def svd(a: Tensor, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False):
    """``numpy.linalg.svd``: (U, S, Vh), or only S with ``compute_uv=False``. The gradient through U or
    Vh needs distinct singular values (and full_matrices=False for a non-square matrix)."""
    if not compute_uv:
        return _parts(Svd, a, full_matrices=False, hermitian=hermitian)[1]
    return SVDResult(*_parts(Svd, a, full_matrices=bool(full_matrices), hermitian=hermitian))


def qr(a: Tensor, mode: str = "reduced"):
    """``numpy.linalg.qr``: (Q, R) for mode 'reduced' or 'complete', R alone for mode 'r'."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"dg.linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    q, r = _parts(Qr, a, complete=mode == "complete")
    return r if mode == "r" else QRResult(q, r)


def lstsq(a: Tensor, b, rcond=None) -> tuple:
    """``numpy.linalg.lstsq``: (x, residuals, rank, s) of the least-squares problem a @ x ≈ b;
    x, residuals and s are differentiable (x through the pseudo-inverse, of constant rank)."""
    if not isinstance(b, Tensor):
        b = Tensor._make(a.device.put(np.asarray(b, dtype=a.dtype)), a.device)
    if a.ndim != 2 or b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise np.linalg.LinAlgError(f"dg.linalg.lstsq: a must be (M, N) and b (M,) or (M, K) with the same M; got "
                                    f"{a.shape} and {b.shape}")
    m, n = a.shape
    cutoff = float(np.finfo(a.dtype).eps) * max(m, n) if rcond is None else rcond
    x = matmul(pinv(a, rcond=cutoff), b)
    s = svd(a, compute_uv=False)
    rank = int((s.data > cutoff * s.data.max()).sum()) if s.size else 0
    if rank == n and m > n:
        residual = b - matmul(a, x)
        residuals = (residual * residual).sum(axis=0)
        residuals = residuals.reshape(1) if b.ndim == 1 else residuals
    else:
        residuals = Tensor._make(a.xp.zeros(0, dtype=a.dtype), a.device)
    return x, residuals, rank, s
