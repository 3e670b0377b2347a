// The fused Grassmann layer on the CPU as one C++ autograd node, its elementwise work in loops over blocks
// of tokens (impl="native"; gflow_lite/kernels/native.py builds and calls it).
//
// gflow_lite/kernels/fused.py computes (G1)-(G6) as one autograd node built from ATen ops (chapter 4 of the
// book derives it); its matrix products stay
// ATen's here too. What this file replaces is everything between them: about 200 small ATen
// ops per forward+backward, each a dispatch and a pass over memory, costing more than the products.
// The formulas are fused.py's, summed in the same order over the offsets (notation of chapter 4):
//
//   z = z_t,  p^Δ = z_{t-Δ} (0 before the first token),  a^Δ = a_t^Δ,  P = r (r - 1) / 2 pairs i < j
//
//   forward  (G2)-(G3)   s^Δ = <z, p^Δ>,  v^Δ = p^Δ - (s^Δ / |z|^2) z,  n^Δ = sqrt(|z|^2 <v^Δ, v^Δ>),
//                        c^Δ = a^Δ / max(n^Δ, eps),  w_⊥ = Σ_Δ c^Δ v^Δ
//            (G4)        q_ij = z_i w_j - z_j w_i      (then g = q W_pluᵀ + (Σ_Δ a^Δ) b_plu, in ATen)
//   backward (G4)        given dq = dg W_plu: (K y)_i = Σ_{j>i} dq_ij y_j - Σ_{j<i} dq_ji y_j,
//                        dw = -K z,  dz|_w = K w_⊥ - β dw,  β = Σ_Δ c^Δ s^Δ / |z|^2
//            (G2)-(G3)   e^Δ = <v^Δ, dw>,  f^Δ = e^Δ c^Δ / n^2 (0 where n < eps; formed as
//                        f^Δ |z|^2 = ((e^Δ c^Δ) / |v^Δ|) / |v^Δ|, never via n^3, which underflows),
//                        dp^Δ = c^Δ dw - f^Δ |z|^2 v^Δ,
//                        dz = dz|_w - (Σ_Δ e^Δ c^Δ / |z|^2) z + Σ_Δ f^Δ s^Δ v^Δ,
//                        da^Δ = e^Δ / max(n^Δ, eps) + <dg, b_plu>,
//                        then dz_t += Σ_Δ dp^Δ_{t+Δ} (the partners' gradients go back Δ tokens)
//            (G5)-(G6)   δ = dh̃ (h - g) (1 - α) α,  dh = α dh̃,  dg = (1 - α) dh̃   (then ATen products)
//
// Without (G3) (normalize = false): c^Δ = a^Δ, v^Δ = p^Δ, w = Σ_Δ a^Δ p^Δ, dz|_w = K w, dp^Δ = a^Δ dw,
// da^Δ = <p^Δ, dw> + <dg, b_plu>.
// With (G3) and r = 2 the normalised wedge is ±1 wherever n >= eps: those pairs contribute exactly 0
// through z and p; pairs under the floor (c = a / eps, linear) give dz|_w = K Σ_Δ c p and dp^Δ = c dw.
//
// Layout: feature-major, ``[features, tokens]``, so that every inner loop runs along the tokens,
// contiguous and without reductions (the compiler vectorises it: 16 floats per AVX-512 instruction).
// The reduced states sit in one zero-padded copy ``zpad [r, B, D + T]`` (D = max Δ: the last D states of
// a streaming cache, or zeros, then this call's T), so the partner row of offset Δ is the same row read
// Δ tokens earlier. Tokens go in blocks of TB, never straddling two batch rows; blocks are independent
// (at::parallel_for), and the partners' gradients are written per block and gathered by a second pass,
// so no two threads write the same element.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace {

constexpr int64_t TB = 64;  // tokens per block: a block's [r, TB] rows of z, w, K z, K w stay in L1/L2

struct Shape {
  int64_t B, T, r, m, P, D;  // batch, tokens, reduced width, offsets, pairs, largest offset
  int64_t N() const { return B * T; }
  int64_t row() const { return D + T; }  // one batch row of zpad
};

// <x, y> over n contiguous elements.
template <typename T>
inline T dot(const T* x, const T* y, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += x[i] * y[i];
  return acc;
}

// Runs f(b, t0, len) over every block of TB tokens (or fewer, at the end of a batch row).
template <typename F>
void for_blocks(const Shape& sh, const F& f) {
  const int64_t per_row = (sh.T + TB - 1) / TB;
  at::parallel_for(0, sh.B * per_row, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t b = k / per_row, t0 = (k % per_row) * TB;
      f(b, t0, std::min(TB, sh.T - t0));
    }
  });
}

// Row i of z for the block starting at token t0 of batch row b; the partner row of offset Δ is this
// pointer minus Δ (zeros or the cache's states before the first token).
template <typename T>
inline const T* zrow(const T* zpad, const Shape& sh, int64_t i, int64_t b, int64_t t0) {
  return zpad + (i * sh.B + b) * sh.row() + sh.D + t0;
}

// q = z ∧ w_⊥ (= z ∧ w) for one block: pairs i < j in W_plu's column order.                          (G4)
template <typename T>
void wedge_block(const T* zpad, const T* w, const Shape& sh, int64_t b, int64_t t0, int64_t len, T* q) {
  const int64_t N = sh.N(), n0 = b * sh.T + t0;
  int64_t pair = 0;
  for (int64_t i = 0; i < sh.r; ++i) {
    const T *z_i = zrow(zpad, sh, i, b, t0), *w_i = w + i * N + n0;
    for (int64_t j = i + 1; j < sh.r; ++j, ++pair) {
      const T *z_j = zrow(zpad, sh, j, b, t0), *w_j = w + j * N + n0;
      T* q_ij = q + pair * N + n0;
#pragma omp simd
      for (int64_t u = 0; u < len; ++u) q_ij[u] = z_i[u] * w_j[u] - z_j[u] * w_i[u];
    }
  }
}

template <typename T>
void forward_block(const T* zpad, const T* a, const int64_t* offs, const Shape& sh, bool normalize, T eps,
                   int64_t b, int64_t t0, int64_t len, T* q, T* w, T* s, T* n, T* zz, std::vector<T>& tmp) {
  const int64_t r = sh.r, m = sh.m, N = sh.N(), n0 = b * sh.T + t0;
  T* coef = tmp.data();  // [m, TB]: s / |z|^2
  T* c = coef + m * TB;  // [m, TB]: c = a / max(n, eps)  (or a)
  T* zz_b = zz + n0;
  for (int64_t k = 0; k < m; ++k)
    for (int64_t u = 0; u < len; ++u) c[k * TB + u] = a[(t0 + u) * m + k];
  if (normalize) {
    const T tiny = std::numeric_limits<T>::min();
    std::fill(zz_b, zz_b + len, T(0));
    for (int64_t i = 0; i < r; ++i) {
      const T* z = zrow(zpad, sh, i, b, t0);
#pragma omp simd
      for (int64_t u = 0; u < len; ++u) zz_b[u] += z[u] * z[u];
    }
    for (int64_t u = 0; u < len; ++u) zz_b[u] = std::max(zz_b[u], tiny);  // |z|^2 (clamped, as fused.py)
    for (int64_t k = 0; k < m; ++k) {
      const int64_t delta = offs[k];
      T* s_k = s + k * N + n0;
      T* n_k = n + k * N + n0;
      T* co = coef + k * TB;
      std::fill(s_k, s_k + len, T(0));
      for (int64_t i = 0; i < r; ++i) {
        const T* z = zrow(zpad, sh, i, b, t0);
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) s_k[u] += z[u] * z[u - delta];  // s = <z, p>            (G2)
      }
      for (int64_t u = 0; u < len; ++u) co[u] = s_k[u] / zz_b[u];
      std::fill(n_k, n_k + len, T(0));
      for (int64_t i = 0; i < r; ++i) {
        const T* z = zrow(zpad, sh, i, b, t0);
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) {
          const T v = z[u - delta] - co[u] * z[u];  // v = p - (s / |z|^2) z
          n_k[u] += v * v;
        }
      }
      T* c_k = c + k * TB;
      for (int64_t u = 0; u < len; ++u) {
        n_k[u] = std::sqrt(n_k[u] * zz_b[u]);  // n = |z| |v| = ||z ∧ p||
        c_k[u] /= std::max(n_k[u], eps);  // c = a / max(n, eps)                                           (G3)
      }
    }
  }
  for (int64_t i = 0; i < r; ++i) {  // w_⊥ = Σ_Δ c v  (w = Σ_Δ a p without (G3))
    const T* z = zrow(zpad, sh, i, b, t0);
    T* w_i = w + i * N + n0;
    std::fill(w_i, w_i + len, T(0));
    for (int64_t k = 0; k < m; ++k) {
      const T* p = z - offs[k];
      const T *c_k = c + k * TB, *co = coef + k * TB;
      if (normalize) {
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) w_i[u] += c_k[u] * (p[u] - co[u] * z[u]);
      } else {
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) w_i[u] += c_k[u] * p[u];
      }
    }
  }
  wedge_block(zpad, w, sh, b, t0, len, q);  // q = z ∧ w_⊥                                            (G4)
}

template <typename T>
void backward_block(const T* zpad, const T* a, const int64_t* offs, const Shape& sh, bool normalize, T eps,
                    const T* w, const T* s, const T* n, const T* zz, const T* dq, const T* dg,
                    const T* bias, int64_t d, int64_t b, int64_t t0, int64_t len, T* dz_own, T* dp, T* da,
                    std::vector<T>& tmp) {
  const int64_t r = sh.r, m = sh.m, N = sh.N(), n0 = b * sh.T + t0;
  T* Kz = tmp.data();  // [r, TB]: K z, then dw = -K z
  T* Kw = Kz + r * TB;  // [r, TB]: K w_⊥
  T* e = Kw + r * TB;  // [TB]
  T* beta = e + TB;  // [TB]
  T* gamma = beta + TB;  // [TB]
  T* c = gamma + TB;  // [TB]
  T* fs = c + TB;  // [TB]
  T* bdot = fs + TB;  // [TB]: <dg, b_plu>, for da
  T* wd = bdot + TB;  // [r, TB]: r = 2 only, Σ_Δ c p over the pairs under the floor
  // r = 2 with (G3): one Plücker coordinate, the normalised wedge is ±1 wherever n >= eps, so those pairs
  // contribute exactly 0 through z; only pairs under the floor (linear there: c = a / eps) do.
  const bool flat = normalize && r == 2;
  if (da)
    for (int64_t u = 0; u < len; ++u) bdot[u] = dot(dg + (n0 + u) * d, bias, d);
  const T* wk = w + n0;  // the wedge's second argument as the adjoint sees it: w_⊥, or (r = 2) wd
  int64_t wk_stride = N;
  if (flat) {
    std::fill(wd, wd + r * TB, T(0));
    for (int64_t k = 0; k < m; ++k) {
      const T* n_k = n + k * N + n0;
      for (int64_t i = 0; i < r; ++i) {
        const T* z = zrow(zpad, sh, i, b, t0);
        for (int64_t u = 0; u < len; ++u)
          if (n_k[u] < eps) wd[i * TB + u] += a[(t0 + u) * m + k] / eps * z[u - offs[k]];
      }
    }
    wk = wd, wk_stride = TB;
  }
  std::fill(Kz, Kz + 2 * r * TB, T(0));
  int64_t pair = 0;  // (K y)_i = Σ_{j>i} dq_ij y_j - Σ_{j<i} dq_ji y_j, for y = z and y = w_⊥ (or wd)
  for (int64_t i = 0; i < r; ++i) {
    const T *z_i = zrow(zpad, sh, i, b, t0), *w_i = wk + i * wk_stride;
    T *Kz_i = Kz + i * TB, *Kw_i = Kw + i * TB;
    for (int64_t j = i + 1; j < r; ++j, ++pair) {
      const T *z_j = zrow(zpad, sh, j, b, t0), *w_j = wk + j * wk_stride, *d = dq + pair * N + n0;
      T *Kz_j = Kz + j * TB, *Kw_j = Kw + j * TB;
#pragma omp simd
      for (int64_t u = 0; u < len; ++u) {
        Kz_i[u] += d[u] * z_j[u];
        Kz_j[u] -= d[u] * z_i[u];
        Kw_i[u] += d[u] * w_j[u];
        Kw_j[u] -= d[u] * w_i[u];
      }
    }
  }
  T* dw = Kz;
  for (int64_t x = 0; x < r * TB; ++x) dw[x] = -dw[x];  // dw = -K z
  if (normalize) {
    const T* zz_b = zz + n0;
    std::fill(beta, beta + len, T(0));
    std::fill(gamma, gamma + len, T(0));
    if (!flat) {  // (wd holds the whole Σ c p: no β)
      for (int64_t k = 0; k < m; ++k)  // β = Σ_Δ c s / |z|^2
        for (int64_t u = 0; u < len; ++u)
          beta[u] += a[(t0 + u) * m + k] / std::max(n[k * N + n0 + u], eps) * s[k * N + n0 + u];
      for (int64_t u = 0; u < len; ++u) beta[u] /= zz_b[u];
    }
    for (int64_t i = 0; i < r; ++i) {  // dz|_w = K w_⊥ - β dw
      T* out = dz_own + i * N + n0;
      const T *Kw_i = Kw + i * TB, *dw_i = dw + i * TB;
#pragma omp simd
      for (int64_t u = 0; u < len; ++u) out[u] = Kw_i[u] - beta[u] * dw_i[u];
    }
    for (int64_t k = 0; k < m; ++k) {
      const int64_t delta = offs[k];
      const T *s_k = s + k * N + n0, *n_k = n + k * N + n0;
      std::fill(e, e + len, T(0));
      for (int64_t i = 0; i < r; ++i) {  // e = <v, dw>, v = p - (s / |z|^2) z
        const T* z = zrow(zpad, sh, i, b, t0);
        const T* dw_i = dw + i * TB;
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) e[u] += (z[u - delta] - s_k[u] / zz_b[u] * z[u]) * dw_i[u];
      }
      T* fz = beta;  // f |z|^2 (β is spent)
      for (int64_t u = 0; u < len; ++u) {
        const T inv = T(1) / std::max(n_k[u], eps);
        const bool live = n_k[u] >= eps;  // c depends on n
        c[u] = a[(t0 + u) * m + k] * inv;  // c = a / max(n, eps)
        const T c_live = live && !flat ? c[u] : T(0);  // (r = 2: live pairs contribute nothing)
        if (flat && live) c[u] = T(0);
        // f |z|^2 = e c |z|^2 / n^2 = ((e c) / |v|) / |v|, |v| = n / |z|: no n^3 (it underflows float32)
        const T rr = std::sqrt(zz_b[u]) * inv;
        fz[u] = ((e[u] * c_live) * rr) * rr;
        gamma[u] += e[u] * c_live;
        fs[u] = fz[u] * (s_k[u] / zz_b[u]);  // f s
        if (da) da[(n0 + u) * m + k] = e[u] * inv + bdot[u];  // da = e / max(n, eps) + <dg, b_plu>
      }
      for (int64_t i = 0; i < r; ++i) {  // dp = c dw - f |z|^2 v;  dz += f s v (summed after the loop)
        const T* z = zrow(zpad, sh, i, b, t0);
        const T* dw_i = dw + i * TB;
        T* dp_ki = dp + (k * r + i) * N + n0;
        T* fsv_i = Kw + i * TB;  // K w_⊥ is spent: Σ_Δ f s v accumulates here
        if (k == 0) std::fill(fsv_i, fsv_i + len, T(0));
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) {
          const T vi = z[u - delta] - s_k[u] / zz_b[u] * z[u];
          dp_ki[u] = c[u] * dw_i[u] - fz[u] * vi;
          fsv_i[u] += fs[u] * vi;
        }
      }
    }
    for (int64_t u = 0; u < len; ++u) gamma[u] /= zz_b[u];  // Σ_Δ e c / |z|^2
    for (int64_t i = 0; i < r; ++i) {  // dz = dz|_w - γ z + Σ_Δ f s v
      const T* z = zrow(zpad, sh, i, b, t0);
      const T* fsv_i = Kw + i * TB;
      T* out = dz_own + i * N + n0;
#pragma omp simd
      for (int64_t u = 0; u < len; ++u) out[u] = (out[u] - gamma[u] * z[u]) + fsv_i[u];
    }
  } else {
    for (int64_t i = 0; i < r; ++i) std::copy(Kw + i * TB, Kw + i * TB + len, dz_own + i * N + n0);  // K w
    for (int64_t k = 0; k < m; ++k) {
      const int64_t delta = offs[k];
      std::fill(e, e + len, T(0));
      for (int64_t i = 0; i < r; ++i) {
        const T* z = zrow(zpad, sh, i, b, t0);
        const T* dw_i = dw + i * TB;
        T* dp_ki = dp + (k * r + i) * N + n0;
#pragma omp simd
        for (int64_t u = 0; u < len; ++u) {
          e[u] += z[u - delta] * dw_i[u];  // <p, dw>
          dp_ki[u] = a[(t0 + u) * m + k] * dw_i[u];  // dp = a dw
        }
      }
      if (da)
        for (int64_t u = 0; u < len; ++u) da[(n0 + u) * m + k] = e[u] + bdot[u];
    }
  }
}

// dz_t = dz_own_t + Σ_Δ dp^Δ_{t+Δ} within each batch row (a streaming cache's states get no gradient).
template <typename T>
void gather_block(const T* dz_own, const T* dp, const int64_t* offs, const Shape& sh, int64_t b, int64_t t0,
                  int64_t len, T* dz) {
  const int64_t N = sh.N(), n0 = b * sh.T + t0;
  for (int64_t i = 0; i < sh.r; ++i) {
    T* out = dz + i * N + n0;
    std::copy(dz_own + i * N + n0, dz_own + i * N + n0 + len, out);
    for (int64_t k = 0; k < sh.m; ++k) {
      const int64_t upto = std::min(len, sh.T - offs[k] - t0);  // tokens t with t + Δ < T
      const T* src = dp + (k * sh.r + i) * N + n0 + offs[k];
#pragma omp simd
      for (int64_t u = 0; u < upto; ++u) out[u] += src[u];
    }
  }
}

template <typename T>
void gate_loop(const T* dy, const T* h, const T* g, const T* alpha, int64_t numel, T* delta, T* dh, T* dg) {
  at::parallel_for(0, numel, 16384, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const T al = alpha[i], d = dy[i];
      delta[i] = d * (h[i] - g[i]) * (T(1) - al) * al;  // δ = dh̃ (h - g) σ'(.), σ' = (1 - α) α
      const T ad = al * d;
      dh[i] = ad;  // α dh̃
      dg[i] = d - ad;  // (1 - α) dh̃
    }
  });
}

Shape shape_of(const at::Tensor& zpad, int64_t T, const at::Tensor& a, const at::Tensor& offsets) {
  TORCH_CHECK(zpad.dim() == 3 && zpad.is_contiguous(), "zpad must be a contiguous [r, B, D + T] tensor");
  TORCH_CHECK(a.dim() == 2 && a.is_contiguous() && a.size(0) == T, "a must be a contiguous [T, m] tensor");
  TORCH_CHECK(offsets.scalar_type() == at::kLong && offsets.dim() == 1 && offsets.numel() == a.size(1),
              "offsets must be m int64");
  TORCH_CHECK(a.scalar_type() == zpad.scalar_type(), "a and zpad must share a dtype");
  const int64_t r = zpad.size(0), D = zpad.size(2) - T;
  const int64_t* o = offsets.data_ptr<int64_t>();
  for (int64_t k = 0; k < offsets.numel(); ++k) TORCH_CHECK(o[k] >= 1 && o[k] <= D, "offsets must be in 1..D");
  return Shape{zpad.size(1), T, r, a.size(1), r * (r - 1) / 2, D};
}

// zpad [r, B, D + T]: per batch row the last D states of `past` [B, C, r] (zeros where C < D), then z's.
template <typename T>
void pad_loop(const T* z, const T* past, int64_t C, const Shape& sh, T* zpad) {
  const int64_t r = sh.r, D = sh.D, row = sh.row();
  for (int64_t i = 0; i < r; ++i)
    for (int64_t b = 0; b < sh.B; ++b) {
      T* out = zpad + (i * sh.B + b) * row;
      for (int64_t j = 0; j < D; ++j) {  // column j holds the state D - j tokens before this call's first
        const int64_t c = C - D + j;
        out[j] = (past && c >= 0) ? past[(b * C + c) * r + i] : T(0);
      }
      for (int64_t t = 0; t < sh.T; ++t) out[D + t] = z[(b * sh.T + t) * r + i];
    }
}

// zpad [r, B, D + T] (D = max Δ): per batch row the last D states of past [B, C, r] (a streaming cache's;
// zeros where C < D, or empty), then this call's z [B, T, r].
at::Tensor pad_context(const at::Tensor& z, const at::Tensor& past, const at::Tensor& offsets) {
  TORCH_CHECK(z.dim() == 3 && z.is_contiguous(), "z must be a contiguous [B, T, r] tensor");
  TORCH_CHECK(offsets.scalar_type() == at::kLong && offsets.dim() == 1 && offsets.numel() > 0,
              "offsets must be a non-empty int64 vector");
  const int64_t B = z.size(0), T = z.size(1), r = z.size(2);
  const int64_t* o = offsets.data_ptr<int64_t>();
  const int64_t D = *std::max_element(o, o + offsets.numel());
  const bool has_past = past.defined() && past.numel() > 0;
  TORCH_CHECK(!has_past || (past.dim() == 3 && past.is_contiguous() && past.size(0) == B && past.size(2) == r &&
                            past.scalar_type() == z.scalar_type()),
              "past must be a contiguous [B, C, r] tensor of z's dtype");
  at::Tensor zpad = at::empty({r, B, D + T}, z.options());
  const Shape sh{B, T, r, 0, 0, D};
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "pad_context", [&] {
    pad_loop<scalar_t>(z.data_ptr<scalar_t>(), has_past ? past.data_ptr<scalar_t>() : nullptr,
                       has_past ? past.size(1) : 0, sh, zpad.data_ptr<scalar_t>());
  });
  return zpad;
}


// From z [B, T, r] (this call's reduced states, token-major), past [B, C, r] (a streaming cache's, or
// empty) and a [T, m]: writes q = z ∧ w_⊥ [P, N] into q and the bias term (Σ_Δ a^Δ) b_plu into g [N, d]
// (rows may be strided); returns w_⊥ [r, N], s, n [m, N], |z|^2 [N], Σ_Δ a^Δ [N].
std::vector<at::Tensor> plucker_forward(const at::Tensor& z, const at::Tensor& past, const at::Tensor& a,
                                        const at::Tensor& offsets, const at::Tensor& bias, const at::Tensor& g,
                                        const at::Tensor& q, bool normalize, double eps) {
  TORCH_CHECK(z.dim() == 3 && z.is_contiguous(), "z must be a contiguous [B, T, r] tensor");
  const int64_t B = z.size(0), T = z.size(1), r = z.size(2);
  TORCH_CHECK(offsets.scalar_type() == at::kLong && offsets.dim() == 1 && offsets.numel() > 0,
              "offsets must be a non-empty int64 vector");
  TORCH_CHECK(g.dim() == 2 && g.size(0) == B * T && g.stride(1) == 1 && bias.is_contiguous() &&
                  bias.numel() == g.size(1) && g.scalar_type() == z.scalar_type() &&
                  bias.scalar_type() == z.scalar_type(),
              "g must be [N, d] with unit column stride, bias [d], both of z's dtype");
  auto opts = z.options();
  const at::Tensor zpad = pad_context(z, past, offsets);
  const Shape sh = shape_of(zpad, T, a, offsets);
  TORCH_CHECK(q.is_contiguous() && q.numel() == sh.P * sh.N() && q.scalar_type() == z.scalar_type(),
              "q must be a contiguous buffer of P N elements of z's dtype");
  at::Tensor w = at::empty({sh.r, sh.N()}, opts);
  at::Tensor s = at::empty({sh.m, sh.N()}, opts), n = at::empty({sh.m, sh.N()}, opts);
  at::Tensor zz = at::empty({sh.N()}, opts), a_sum = at::empty({sh.N()}, opts);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "plucker_forward", [&] {
    const scalar_t* zp = zpad.data_ptr<scalar_t>();
    const scalar_t *ap = a.data_ptr<scalar_t>(), *bp = bias.data_ptr<scalar_t>();
    scalar_t *qp = q.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>(), *sp = s.data_ptr<scalar_t>(),
             *np = n.data_ptr<scalar_t>(), *zzp = zz.data_ptr<scalar_t>(), *asp = a_sum.data_ptr<scalar_t>(),
             *gp = g.data_ptr<scalar_t>();
    const int64_t* op = offsets.data_ptr<int64_t>();
    const int64_t d = g.size(1), ld = g.stride(0), m = sh.m;
    for_blocks(sh, [&](int64_t b, int64_t t0, int64_t len) {
      std::vector<scalar_t> tmp(2 * sh.m * TB);
      forward_block<scalar_t>(zp, ap, op, sh, normalize, static_cast<scalar_t>(eps), b, t0, len, qp, wp, sp,
                              np, zzp, tmp);
      for (int64_t u = 0; u < len; ++u) {  // g = (Σ_Δ a^Δ) b_plu, before the product adds W_plu q
        const int64_t tok = b * T + t0 + u;
        scalar_t sum = 0;
        for (int64_t k = 0; k < m; ++k) sum += ap[(t0 + u) * m + k];
        asp[tok] = sum;
        scalar_t* g_t = gp + tok * ld;
        for (int64_t i = 0; i < d; ++i) g_t[i] = sum * bp[i];
      }
    });
  });
  return {w, s, n, zz, a_sum};
}

// q = z ∧ w_⊥ [P, N] into q (the backward recomputes it for dW_plu).
void wedge(const at::Tensor& zpad, const at::Tensor& w, int64_t T, const at::Tensor& q) {
  TORCH_CHECK(zpad.is_contiguous() && w.is_contiguous() && w.size(0) == zpad.size(0), "zpad, w: contiguous");
  const int64_t r = zpad.size(0);
  const Shape sh{zpad.size(1), T, r, 0, r * (r - 1) / 2, zpad.size(2) - T};
  TORCH_CHECK(w.size(1) == sh.N() && q.is_contiguous() && q.numel() == sh.P * sh.N() &&
                  q.scalar_type() == zpad.scalar_type(), "w must be [r, B T], q a contiguous buffer of P N");
  AT_DISPATCH_FLOATING_TYPES(zpad.scalar_type(), "wedge", [&] {
    const scalar_t *zp = zpad.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    scalar_t* qp = q.data_ptr<scalar_t>();
    for_blocks(sh, [&](int64_t b, int64_t t0, int64_t len) { wedge_block<scalar_t>(zp, wp, sh, b, t0, len, qp); });
  });
}

// Returns dz [r, N] and da [N, m] (or an empty tensor) from dq = dg W_plu [P, N] and dg [N, d]; work is
// the caller's scratch for the partners' gradients and each token's own ((m + 1) r N elements).
std::vector<at::Tensor> plucker_backward(const at::Tensor& zpad, int64_t T, const at::Tensor& a,
                                         const at::Tensor& offsets, bool normalize, double eps,
                                         const at::Tensor& w, const at::Tensor& s, const at::Tensor& n,
                                         const at::Tensor& zz, const at::Tensor& dq, const at::Tensor& dg,
                                         const at::Tensor& bias, bool need_a, const at::Tensor& work) {
  const Shape sh = shape_of(zpad, T, a, offsets);
  TORCH_CHECK(dq.is_contiguous() && dq.size(0) == sh.P && dq.size(1) == sh.N(), "dq must be contiguous [P, N]");
  for (const auto* x : {&w, &s, &n, &zz, &dg, &bias}) TORCH_CHECK(x->is_contiguous(), "w, s, n, zz, dg, bias: contiguous");
  TORCH_CHECK(dg.dim() == 2 && dg.size(0) == sh.N() && dg.size(1) == bias.numel(), "dg must be [N, d], bias [d]");
  auto opts = zpad.options();
  TORCH_CHECK(work.is_contiguous() && work.numel() >= (sh.m + 1) * sh.r * sh.N() &&
                  work.scalar_type() == zpad.scalar_type(), "work must be a contiguous buffer of (m + 1) r N");
  at::Tensor da = need_a ? at::empty({sh.N(), sh.m}, opts) : at::Tensor();
  at::Tensor dz = at::empty({sh.r, sh.N()}, opts);
  AT_DISPATCH_FLOATING_TYPES(zpad.scalar_type(), "plucker_backward", [&] {
    const scalar_t *zp = zpad.data_ptr<scalar_t>(), *ap = a.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>(),
                   *sp = s.data_ptr<scalar_t>(), *np = n.data_ptr<scalar_t>(), *zzp = zz.data_ptr<scalar_t>(),
                   *dqp = dq.data_ptr<scalar_t>(), *dgp = dg.data_ptr<scalar_t>(),
                   *bp = bias.data_ptr<scalar_t>();
    scalar_t *dzo = work.data_ptr<scalar_t>(), *dpp = dzo + sh.r * sh.N(), *dzp = dz.data_ptr<scalar_t>();
    scalar_t* dap = need_a ? da.data_ptr<scalar_t>() : nullptr;
    const int64_t* op = offsets.data_ptr<int64_t>();
    for_blocks(sh, [&](int64_t b, int64_t t0, int64_t len) {
      std::vector<scalar_t> tmp((3 * sh.r + 6) * TB);
      backward_block<scalar_t>(zp, ap, op, sh, normalize, static_cast<scalar_t>(eps), wp, sp, np, zzp, dqp, dgp,
                               bp, dg.size(1), b, t0, len, dzo, dpp, dap, tmp);
    });
    for_blocks(sh, [&](int64_t b, int64_t t0, int64_t len) { gather_block<scalar_t>(dzo, dpp, op, sh, b, t0, len, dzp); });
  });
  return {dz, da};
}

// Returns dh = α dh̃ (fresh); writes δ and (1 - α) dh̃ into delta and dg (the caller's scratch).
at::Tensor gate_backward(const at::Tensor& dy, const at::Tensor& h, const at::Tensor& g, const at::Tensor& alpha,
                         const at::Tensor& delta, const at::Tensor& dg) {
  for (const auto* x : {&dy, &h, &g, &alpha, &delta, &dg})
    TORCH_CHECK(x->is_contiguous() && x->sizes() == alpha.sizes() && x->scalar_type() == alpha.scalar_type(),
                "gate_backward needs contiguous tensors of one shape and dtype");
  at::Tensor dh = at::empty_like(alpha);
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "gate_backward", [&] {
    gate_loop<scalar_t>(dy.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                        alpha.data_ptr<scalar_t>(), alpha.numel(), delta.data_ptr<scalar_t>(),
                        dh.data_ptr<scalar_t>(), dg.data_ptr<scalar_t>());
  });
  return dh;
}

// ============================================================================== the layer's node
// (G1)-(G6) as one autograd node, the matrix products ATen's, called from here (no Python between the
// steps). Temporaries that never leave a call (q, dq, δ, dg and the backward's per-token work) live in
// per-thread buffers reused from call to call: fresh buffers of a few hundred KB cost page faults on every
// step (gflow_lite/kernels/fused.py, _Scratch). They are allocated through ATen, so memory measurements
// count them.

enum Slot { kQ, kDq, kDelta, kDg, kWork, kSlots };

std::array<at::Tensor, kSlots>& scratch_buffers() {
  static thread_local std::array<at::Tensor, kSlots> bufs;
  return bufs;
}

at::Tensor scratch(Slot slot, at::IntArrayRef shape, const at::TensorOptions& opts) {
  int64_t numel = 1;
  for (int64_t n : shape) numel *= n;
  at::Tensor& buf = scratch_buffers()[slot];
  if (!buf.defined() || buf.numel() < numel || buf.scalar_type() != opts.dtype().toScalarType())
    buf = at::empty({numel}, opts);
  return buf.narrow(0, 0, numel).view(shape);
}

int64_t release_scratch() {  // frees this thread's buffers; returns the bytes released
  int64_t bytes = 0;
  for (at::Tensor& buf : scratch_buffers()) {
    if (buf.defined()) bytes += static_cast<int64_t>(buf.nbytes());
    buf = at::Tensor();
  }
  return bytes;
}

struct Forward {
  at::Tensor out, z, h2, g, alpha, w, s, n, zz, a_sum;
};

// (G1)-(G6) forward. h [B, T, d], past [B, C, r] or undefined, a [T, m], weights in h's dtype.
Forward layer_forward(const at::Tensor& h, const at::Tensor& past, const at::Tensor& a, const at::Tensor& w_red,
                      const at::Tensor& b_red, const at::Tensor& w_plu, const at::Tensor& b_plu,
                      const at::Tensor& w_gate, const at::Tensor& b_gate, const at::Tensor& offsets,
                      bool normalize, double eps) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t B = h.size(0), T = h.size(1), d = h.size(2), N = B * T, r = w_red.size(0);
  Forward f;
  f.h2 = h.reshape({N, d}).contiguous();  // [N, d]
  f.z = at::addmm(b_red, f.h2, w_red.t());  // z = W_red h + b_red  [N, r]                            (G1)
  f.g = at::empty_like(f.h2);
  at::Tensor q = scratch(kQ, {w_plu.size(1), N}, h.options());  // z ∧ w_⊥, feature-major [P, N]
  auto pf = plucker_forward(f.z.view({B, T, r}), past, a, offsets, b_plu, f.g, q, normalize, eps);  // (G2)-(G3)
  f.w = pf[0], f.s = pf[1], f.n = pf[2], f.zz = pf[3], f.a_sum = pf[4];
  at::addmm_out(f.g, f.g, q.t(), w_plu.t());  // g = W_plu (z ∧ w) + (Σ_Δ a^Δ) b_plu                     (G4)
  const at::Tensor w_h = w_gate.narrow(1, 0, d), w_g = w_gate.narrow(1, d, d);
  f.alpha = at::addmm(b_gate, f.h2, w_h.t());
  at::addmm_out(f.alpha, f.alpha, f.g, w_g.t());
  f.alpha.sigmoid_();  // α = σ(W_h h + W_g g + b_gate)                                                 (G5)
  f.out = at::lerp(f.g, f.h2, f.alpha).view({B, T, d});  // h̃ = g + α (h - g) = α h + (1 - α) g         (G6)
  f.z = f.z.view({B, T, r});
  return f;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct GrassmannLayer : public torch::autograd::Function<GrassmannLayer> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& past,
                               const at::Tensor& a, const at::Tensor& w_red, const at::Tensor& b_red,
                               const at::Tensor& w_plu, const at::Tensor& b_plu, const at::Tensor& w_gate,
                               const at::Tensor& b_gate, const at::Tensor& offsets, bool normalize, double eps) {
    Forward f = layer_forward(h, past, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, offsets, normalize, eps);
    ctx->save_for_backward({f.h2, f.g, f.alpha, f.z, past, a, f.a_sum, f.w, f.s, f.n, f.zz, w_red, w_plu, b_plu,
                            w_gate});  // z and the cache's states rebuild zpad in the backward
    ctx->saved_data["offsets"] = offsets;
    ctx->saved_data["normalize"] = normalize;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["B"] = h.size(0);
    ctx->mark_non_differentiable({f.z});
    ctx->set_materialize_grads(false);
    return {f.out, f.z};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(12);
    if (!grads[0].defined()) return out;  // h̃ unused
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const variable_list sv = ctx->get_saved_variables();
    const at::Tensor &h = sv[0], &g = sv[1], &alpha = sv[2], &z = sv[3], &past = sv[4], &a = sv[5],
                     &a_sum = sv[6], &w = sv[7], &s = sv[8], &n = sv[9], &zz = sv[10], &w_red = sv[11],
                     &w_plu = sv[12], &b_plu = sv[13], &w_gate = sv[14];
    const at::Tensor offsets = ctx->saved_data["offsets"].toTensor();
    const bool normalize = ctx->saved_data["normalize"].toBool();
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t B = ctx->saved_data["B"].toInt(), N = h.size(0), d = h.size(1), T = N / B;
    const int64_t r = w_red.size(0), P = w_plu.size(1), m = offsets.numel();
    const auto opts = h.options();
    const at::Tensor zpad = pad_context(z, past, offsets);
    const at::Tensor dy = grads[0].reshape({N, d}).to(h.scalar_type()).contiguous();
    at::Tensor delta = scratch(kDelta, {N, d}, opts), dg = scratch(kDg, {N, d}, opts);
    at::Tensor dh = gate_backward(dy, h, g, alpha, delta, dg);  // α dh̃; δ, (1 - α) dh̃                (G5)-(G6)
    const at::Tensor w_h = w_gate.narrow(1, 0, d), w_g = w_gate.narrow(1, d, d);
    at::addmm_out(dh, dh, delta, w_h);  // dh = α dh̃ + δ W_h
    at::addmm_out(dg, dg, delta, w_g);  // dg = (1 - α) dh̃ + δ W_g
    if (ctx->needs_input_grad(7)) {  // dW_gate = [δᵀ h | δᵀ g]
      at::Tensor dw = at::empty_like(w_gate);
      at::Tensor dw_h = dw.narrow(1, 0, d), dw_g = dw.narrow(1, d, d);
      at::mm_out(dw_h, delta.t(), h);
      at::mm_out(dw_g, delta.t(), g);
      out[7] = dw;
    }
    if (ctx->needs_input_grad(8)) out[8] = delta.sum(0);  // db_gate = Σ_t δ
    if (ctx->needs_input_grad(5)) {  // dW_plu = dgᵀ q, q recomputed
      at::Tensor q = scratch(kQ, {P, N}, opts);
      wedge(zpad, w, T, q);
      out[5] = at::mm(dg.t(), q.t());
    }
    if (ctx->needs_input_grad(6)) out[6] = at::mm(a_sum.view({1, N}), dg).view({d});  // db_plu = Σ_t (Σ_Δ a^Δ) dg
    at::Tensor dq = scratch(kDq, {P, N}, opts);
    at::mm_out(dq, w_plu.t(), dg.t());  // dq = dg W_plu, feature-major [P, N]                          (G4)
    const bool need_a = ctx->needs_input_grad(2);
    auto dzda = plucker_backward(zpad, T, a, offsets, normalize, eps, w, s, n, zz, dq, dg, b_plu, need_a,
                                 scratch(kWork, {(m + 1) * r * N}, opts));  // (G2)-(G3), gathered back
    const at::Tensor& dz = dzda[0];  // [r, N]
    at::addmm_out(dh, dh, dz.t(), w_red);  // dh += dz W_red                                             (G1)
    if (ctx->needs_input_grad(3)) out[3] = at::mm(dz, h);  // dW_red = dzᵀ h
    if (ctx->needs_input_grad(4)) out[4] = dz.sum(1);  // db_red = Σ_t dz
    if (need_a) out[2] = B == 1 ? dzda[1] : dzda[1].view({B, T, m}).sum(0);  // summed over the batch
    out[0] = dh.view({B, T, d});
    return out;
  }
};

// (h̃ [B, T, d], z [B, T, r]) with autograd (z carries no gradient); past may be an empty tensor.
variable_list grassmann_layer(const at::Tensor& h, const at::Tensor& past, const at::Tensor& a,
                              const at::Tensor& w_red, const at::Tensor& b_red, const at::Tensor& w_plu,
                              const at::Tensor& b_plu, const at::Tensor& w_gate, const at::Tensor& b_gate,
                              const at::Tensor& offsets, bool normalize, double eps) {
  return GrassmannLayer::apply(h, past, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, offsets, normalize, eps);
}

// The forward alone (no autograd: generation, evaluation).
std::vector<at::Tensor> grassmann_layer_forward(const at::Tensor& h, const at::Tensor& past, const at::Tensor& a,
                                                const at::Tensor& w_red, const at::Tensor& b_red,
                                                const at::Tensor& w_plu, const at::Tensor& b_plu,
                                                const at::Tensor& w_gate, const at::Tensor& b_gate,
                                                const at::Tensor& offsets, bool normalize, double eps) {
  Forward f = layer_forward(h, past, a, w_red, b_red, w_plu, b_plu, w_gate, b_gate, offsets, normalize, eps);
  return {f.out, f.z};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("grassmann_layer", &grassmann_layer, "(G1)-(G6) as one autograd node: (h̃, z)");
  mod.def("grassmann_layer_forward", &grassmann_layer_forward, "(G1)-(G6) forward without autograd: (h̃, z)");
  mod.def("release_scratch", &release_scratch, "free this thread's buffers");
}
