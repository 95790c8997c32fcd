/*
 * Arithmetic in the BLS12-381 scalar field F_r, r = 0x73eda753...00000001 (255 bits).
 *
 * An element is eight 32-bit limbs, least significant first: exactly the bytes of a
 * 32-byte little-endian node on a little-endian machine.  Products are Montgomery
 * products (R = 2^256) computed with the CIOS method; because the top limb of r is below
 * 2^31 the carries of the reduction never leave the eight limbs (the "no-carry" form).
 *
 * The same text compiles as CUDA (NVRTC defines __CUDACC__) and as host C (gcc), so the
 * code a GPU runs is the code the host tests check.  Only the qualifiers differ.
 */
#ifndef SEALAGENT_FR_CUH
#define SEALAGENT_FR_CUH

typedef unsigned int u32;
typedef unsigned long long u64;

#if defined(__CUDACC__)
#define FR_FN __device__ __forceinline__
#define FR_CONST __constant__ const
#define KERNEL extern "C" __global__
#define RESTRICT __restrict__
/* Grid-stride loop: thread i handles items i, i + threads, ... */
#define FOR_EACH_ITEM(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (u64)(n); \
         i += (u64)gridDim.x * blockDim.x)
#define FLAG_BAD(flag) atomicOr((flag), 1u)
#else
#define FR_FN static inline
#define FR_CONST static const
#define KERNEL
#define RESTRICT __restrict__
#define FOR_EACH_ITEM(i, n) for (u64 i = 0; i < (u64)(n); ++i)
#define FLAG_BAD(flag) (*(flag) = 1u)
#endif

#define FR_LIMBS 8

/* r, least significant limb first. */
FR_CONST u32 FR_MODULUS[FR_LIMBS] = {
    0x00000001u, 0xffffffffu, 0xfffe5bfeu, 0x53bda402u,
    0x09a1d805u, 0x3339d808u, 0x299d7d48u, 0x73eda753u};

/* R^2 mod r, to enter Montgomery form with one product. */
FR_CONST u32 FR_R2[FR_LIMBS] = {
    0xf3f29c6du, 0xc999e990u, 0x87925c23u, 0x2b6cedcbu,
    0x7254398fu, 0x05d31496u, 0x9f59ff11u, 0x0748d9d9u};

/* -r^-1 mod 2^32. */
#define FR_INV 0xffffffffu

/* d = a - b mod 2^256; returns the borrow out of the top limb (1 when a < b). */
FR_FN u32 fr_sub_limbs(u32 *d, const u32 *a, const u32 *b) {
    u64 borrow = 0;
    for (int i = 0; i < FR_LIMBS; ++i) {
        u64 diff = (u64)a[i] - b[i] - borrow;
        d[i] = (u32)diff;
        borrow = (diff >> 32) & 1u;
    }
    return (u32)borrow;
}

/* out = a when a < r, else a - r (a < 2r). */
FR_FN void fr_reduce_once(u32 *out, const u32 *a) {
    u32 d[FR_LIMBS];
    /* keep = all ones when a < r (the subtraction borrowed). */
    const u32 keep = (u32)0 - fr_sub_limbs(d, a, FR_MODULUS);
    for (int i = 0; i < FR_LIMBS; ++i) out[i] = (a[i] & keep) | (d[i] & ~keep);
}

/* 1 when a is a canonical element (a < r), else 0. */
FR_FN int fr_is_canonical(const u32 *a) {
    u32 d[FR_LIMBS];
    return (int)fr_sub_limbs(d, a, FR_MODULUS);
}

FR_FN void fr_copy(u32 *out, const u32 *a) {
    for (int i = 0; i < FR_LIMBS; ++i) out[i] = a[i];
}

/* out = a + b mod r (a, b < r). */
FR_FN void fr_add(u32 *out, const u32 *a, const u32 *b) {
    u32 s[FR_LIMBS];
    u64 carry = 0;
    for (int i = 0; i < FR_LIMBS; ++i) {
        u64 sum = (u64)a[i] + b[i] + carry;
        s[i] = (u32)sum;
        carry = sum >> 32;
    }
    /* a + b < 2r < 2^256: no carry out of the top limb. */
    fr_reduce_once(out, s);
}

/* out = a - b mod r (a, b < r). */
FR_FN void fr_sub(u32 *out, const u32 *a, const u32 *b) {
    u32 d[FR_LIMBS];
    const u32 mask = (u32)0 - fr_sub_limbs(d, a, b);
    u64 carry = 0;
    for (int i = 0; i < FR_LIMBS; ++i) {
        u64 sum = (u64)d[i] + (FR_MODULUS[i] & mask) + carry;
        out[i] = (u32)sum;
        carry = sum >> 32;
    }
}

/* out = a * b * R^-1 mod r (a, b < r); out may alias a or b. */
FR_FN void fr_mul(u32 *out, const u32 *a, const u32 *b) {
    u32 t[FR_LIMBS];
    for (int i = 0; i < FR_LIMBS; ++i) t[i] = 0;
    for (int i = 0; i < FR_LIMBS; ++i) {
        const u32 bi = b[i];
        u64 p = (u64)a[0] * bi + t[0];
        u32 hi = (u32)(p >> 32);
        const u32 lo = (u32)p;
        const u32 m = lo * FR_INV;
        u64 c = (u64)m * FR_MODULUS[0] + lo;
        u32 chi = (u32)(c >> 32);
        for (int j = 1; j < FR_LIMBS; ++j) {
            p = (u64)a[j] * bi + t[j] + hi;
            hi = (u32)(p >> 32);
            c = (u64)m * FR_MODULUS[j] + (u32)p + chi;
            chi = (u32)(c >> 32);
            t[j - 1] = (u32)c;
        }
        t[FR_LIMBS - 1] = chi + hi;
    }
    fr_reduce_once(out, t);
}

/* Montgomery form of a canonical element: a * R mod r. */
FR_FN void fr_to_mont(u32 *out, const u32 *a) { fr_mul(out, a, FR_R2); }

/* Canonical value of a Montgomery-form element: a * R^-1 mod r. */
FR_FN void fr_from_mont(u32 *out, const u32 *a) {
    u32 one[FR_LIMBS] = {1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
    fr_mul(out, a, one);
}

/* x^5 in place (Montgomery form). */
FR_FN void fr_pow5(u32 *x) {
    u32 x2[FR_LIMBS], x4[FR_LIMBS];
    fr_mul(x2, x, x);
    fr_mul(x4, x2, x2);
    fr_mul(x, x4, x);
}

/* acc = acc + a * b (Montgomery form). */
FR_FN void fr_mul_add(u32 *acc, const u32 *a, const u32 *b) {
    u32 p[FR_LIMBS];
    fr_mul(p, a, b);
    fr_add(acc, acc, p);
}

#endif /* SEALAGENT_FR_CUH */
