/*
 * Poseidon (neptune, Strength::Standard, HashType::MerkleTree) over F_r, one hash per
 * thread, and the PC2 kernels built on it: tree rows, column hashes, and the replica
 * encoding fused with the first row of tree_r_last.
 *
 * Compiled once per arity: POSEIDON_ARITY and POSEIDON_PARTIAL_ROUNDS must be defined
 * (-D), so the state has a fixed width and the loops unroll.
 *
 * The permutation follows neptune's optimised schedule: the round constants of the
 * partial rounds that do not meet an S-box are pushed forward into the first full round
 * after them, the last full round before the partial rounds multiplies by
 * diag(1, M^^R_P) * M, and each partial round multiplies by a sparse matrix (first row
 * w_k with m00, first column v_k, identity elsewhere).  The host prepares every constant
 * in Montgomery form in one array, laid out as POSEIDON_OFFSET_* below.  Arity 11's
 * schedule is about 54 KB and several arities are used together, which exceeds the 64 KB
 * of constant memory, so the array lives in global memory (read-only, every thread of a
 * warp reads the same word: one broadcast load through the L1 cache).
 *
 * Inputs and outputs are canonical 32-byte little-endian nodes (eight u32 limbs).  A
 * node that is not a canonical field element sets *bad to 1; the caller raises.
 */
#include "fr.cuh"

#if !defined(POSEIDON_ARITY) || !defined(POSEIDON_PARTIAL_ROUNDS)
#error "define POSEIDON_ARITY and POSEIDON_PARTIAL_ROUNDS"
#endif

#define POSEIDON_WIDTH (POSEIDON_ARITY + 1)
#define POSEIDON_HALF_FULL 4
#define POSEIDON_SPARSE (2 * POSEIDON_WIDTH - 1)

/* Offsets, in field elements, of the parts of the constants array. */
#define POSEIDON_OFFSET_TAG 0
#define POSEIDON_OFFSET_HEAD 1
#define POSEIDON_OFFSET_MDS (POSEIDON_OFFSET_HEAD + POSEIDON_HALF_FULL * POSEIDON_WIDTH)
#define POSEIDON_OFFSET_PRE (POSEIDON_OFFSET_MDS + POSEIDON_WIDTH * POSEIDON_WIDTH)
#define POSEIDON_OFFSET_PARTIAL (POSEIDON_OFFSET_PRE + POSEIDON_WIDTH * POSEIDON_WIDTH)
#define POSEIDON_OFFSET_TAIL \
    (POSEIDON_OFFSET_PARTIAL + POSEIDON_PARTIAL_ROUNDS * POSEIDON_SPARSE)
#define POSEIDON_CONSTANTS (POSEIDON_OFFSET_TAIL + POSEIDON_HALF_FULL * POSEIDON_WIDTH)

#define ELEMENT(base, index) ((base) + (u64)(index) * FR_LIMBS)

/* Add one round's constants to the state and raise every element to the 5th power. */
FR_FN void poseidon_full_sbox(u32 s[POSEIDON_WIDTH][FR_LIMBS], const u32 *RESTRICT rc) {
    for (int i = 0; i < POSEIDON_WIDTH; ++i) {
        fr_add(s[i], s[i], ELEMENT(rc, i));
        fr_pow5(s[i]);
    }
}

/* s = matrix * s for a row-major WIDTH x WIDTH matrix; only rows [first, last). */
FR_FN void poseidon_matrix(u32 s[POSEIDON_WIDTH][FR_LIMBS], const u32 *RESTRICT matrix,
                           int first, int last) {
    u32 out[POSEIDON_WIDTH][FR_LIMBS];
    for (int j = first; j < last; ++j) {
        fr_mul(out[j], ELEMENT(matrix, j * POSEIDON_WIDTH), s[0]);
        for (int i = 1; i < POSEIDON_WIDTH; ++i)
            fr_mul_add(out[j], ELEMENT(matrix, j * POSEIDON_WIDTH + i), s[i]);
    }
    for (int j = first; j < last; ++j) fr_copy(s[j], out[j]);
}

/* The permutation; on return s[1] (Montgomery form) is the digest.  s[0] must hold the
 * tag and s[1..ARITY] the inputs, all in Montgomery form. */
FR_FN void poseidon_permute(u32 s[POSEIDON_WIDTH][FR_LIMBS], const u32 *RESTRICT c) {
    const u32 *head = ELEMENT(c, POSEIDON_OFFSET_HEAD);
    const u32 *mds = ELEMENT(c, POSEIDON_OFFSET_MDS);
    for (int r = 0; r < POSEIDON_HALF_FULL; ++r) {
        poseidon_full_sbox(s, ELEMENT(head, r * POSEIDON_WIDTH));
        poseidon_matrix(s, r + 1 < POSEIDON_HALF_FULL ? mds : ELEMENT(c, POSEIDON_OFFSET_PRE),
                        0, POSEIDON_WIDTH);
    }
    const u32 *m00 = mds;
    for (int k = 0; k < POSEIDON_PARTIAL_ROUNDS; ++k) {
        const u32 *round = ELEMENT(c, POSEIDON_OFFSET_PARTIAL + k * POSEIDON_SPARSE);
        const u32 *w = ELEMENT(round, 1);
        const u32 *v = ELEMENT(round, POSEIDON_WIDTH);
        fr_add(s[0], s[0], round);
        fr_pow5(s[0]);
        u32 first[FR_LIMBS];
        fr_mul(first, m00, s[0]);
        for (int i = 1; i < POSEIDON_WIDTH; ++i) {
            fr_mul_add(first, ELEMENT(w, i - 1), s[i]);
            fr_mul_add(s[i], ELEMENT(v, i - 1), s[0]);
        }
        fr_copy(s[0], first);
    }
    const u32 *tail = ELEMENT(c, POSEIDON_OFFSET_TAIL);
    for (int r = 0; r < POSEIDON_HALF_FULL; ++r) {
        poseidon_full_sbox(s, ELEMENT(tail, r * POSEIDON_WIDTH));
        /* The last round only needs the digest, element 1. */
        poseidon_matrix(s, mds, r + 1 < POSEIDON_HALF_FULL ? 0 : 1,
                        r + 1 < POSEIDON_HALF_FULL ? POSEIDON_WIDTH : 2);
    }
}

/* Load one canonical node into Montgomery form, flagging a non-canonical one. */
FR_FN void poseidon_load(u32 *out, const u32 *RESTRICT node, u32 *RESTRICT bad) {
    u32 x[FR_LIMBS];
    fr_copy(x, node);
    if (!fr_is_canonical(x)) FLAG_BAD(bad);
    fr_to_mont(out, x);
}

/* The tag, then the digest of the state, written canonical to out. */
FR_FN void poseidon_finish(u32 s[POSEIDON_WIDTH][FR_LIMBS], const u32 *RESTRICT c,
                           u32 *RESTRICT out) {
    fr_copy(s[0], ELEMENT(c, POSEIDON_OFFSET_TAG));
    poseidon_permute(s, c);
    fr_from_mont(out, s[1]);
}

/*
 * n hashes; input j of hash i is node i * item_stride + j * input_stride of `in`.
 *  - a tree row: item_stride = ARITY, input_stride = 1 (groups of consecutive nodes);
 *  - column hashes of ARITY layers stored one after another (n nodes each):
 *    item_stride = 1, input_stride = n.
 */
KERNEL void poseidon_hash(const u32 *RESTRICT consts, const u32 *RESTRICT in,
                          u64 item_stride, u64 input_stride, u32 *RESTRICT out, u64 n,
                          u32 *RESTRICT bad) {
    FOR_EACH_ITEM(i, n) {
        u32 s[POSEIDON_WIDTH][FR_LIMBS];
        for (int j = 0; j < POSEIDON_ARITY; ++j)
            poseidon_load(s[j + 1], ELEMENT(in, i * item_stride + j * input_stride), bad);
        poseidon_finish(s, consts, ELEMENT(out, i));
    }
}

/*
 * The replica and the first row of tree_r_last in one pass: for each of n groups of
 * ARITY nodes, replica = key + data (mod r) is written to `replica` and the group's
 * hash to `out`.  `key` is the last layer's labels, `data` the unsealed nodes.
 */
KERNEL void encode_hash(const u32 *RESTRICT consts, const u32 *RESTRICT key,
                        const u32 *RESTRICT data, u32 *RESTRICT replica, u32 *RESTRICT out,
                        u64 n, u32 *RESTRICT bad) {
    FOR_EACH_ITEM(i, n) {
        u32 s[POSEIDON_WIDTH][FR_LIMBS];
        for (int j = 0; j < POSEIDON_ARITY; ++j) {
            const u64 node = i * POSEIDON_ARITY + j;
            u32 k[FR_LIMBS], d[FR_LIMBS], e[FR_LIMBS];
            fr_copy(k, ELEMENT(key, node));
            fr_copy(d, ELEMENT(data, node));
            if (!fr_is_canonical(k) || !fr_is_canonical(d)) FLAG_BAD(bad);
            fr_add(e, k, d);
            fr_copy(ELEMENT(replica, node), e);
            fr_to_mont(s[j + 1], e);
        }
        poseidon_finish(s, consts, ELEMENT(out, i));
    }
}

/* Field operations on n pairs, for testing the arithmetic against a reference:
 * op 0: a * b * R^-1, 1: a + b, 2: a - b, 3: a * R (to Montgomery), 4: a * R^-1,
 * 5: a^5 in Montgomery form, 6: canonical(a) (1 or 0 in limb 0). */
KERNEL void fr_batch(int op, const u32 *RESTRICT a, const u32 *RESTRICT b,
                     u32 *RESTRICT out, u64 n) {
    FOR_EACH_ITEM(i, n) {
        u32 x[FR_LIMBS], y[FR_LIMBS], z[FR_LIMBS];
        fr_copy(x, ELEMENT(a, i));
        fr_copy(y, ELEMENT(b, i));
        for (int l = 0; l < FR_LIMBS; ++l) z[l] = 0;
        switch (op) {
            case 0: fr_mul(z, x, y); break;
            case 1: fr_add(z, x, y); break;
            case 2: fr_sub(z, x, y); break;
            case 3: fr_to_mont(z, x); break;
            case 4: fr_from_mont(z, x); break;
            case 5: fr_copy(z, x); fr_pow5(z); break;
            default: z[0] = (u32)fr_is_canonical(x); break;
        }
        fr_copy(ELEMENT(out, i), z);
    }
}
