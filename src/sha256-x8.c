/*
 * sha256-x8.c - SHA-256 of eight independent messages at once, one per
 * 32-bit lane of an AVX2 register (FIPS 180-4, 6.2.2, run in parallel).
 *
 * One message is a serial chain of compressions, so a single stream gets
 * nothing from wide registers without the SHA extensions; eight files
 * hashed side by side do.  sha256_files() feeds it.  Built with a target
 * attribute and chosen at run time, so the binary still runs on CPUs
 * without AVX2; AVX-512VL adds a one-instruction rotate.
 */
#include <config.h>

#include "sha256.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define X8_BODY								\
	__m256i a, b, c, d, e, f, g, h, w[16];				\
	const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4,	\
	    11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4,	\
	    11, 10, 9, 8, 15, 14, 13, 12);				\
	uint32_t tmp[8][8];						\
	__m256i st[8];							\
	size_t blk;							\
	int i, l, t;							\
									\
	for (i = 0; i < 8; i++)						\
		st[i] = _mm256_setr_epi32((int)ctx[0]->h[i],		\
		    (int)ctx[1]->h[i], (int)ctx[2]->h[i],		\
		    (int)ctx[3]->h[i], (int)ctx[4]->h[i],		\
		    (int)ctx[5]->h[i], (int)ctx[6]->h[i],		\
		    (int)ctx[7]->h[i]);					\
	for (blk = 0; blk < nblocks; blk++) {				\
		for (i = 0; i < 2; i++) {				\
			__m256i r[8], t8[8], u[8];			\
									\
			for (l = 0; l < 8; l++)				\
				r[l] = _mm256_loadu_si256((const __m256i *) \
				    (p[l] + 64 * blk + 32 * i));	\
			for (l = 0; l < 8; l += 2) {			\
				t8[l] = _mm256_unpacklo_epi32(r[l], r[l + 1]); \
				t8[l + 1] = _mm256_unpackhi_epi32(r[l],	\
				    r[l + 1]);				\
			}						\
			for (l = 0; l < 8; l += 4) {			\
				u[l] = _mm256_unpacklo_epi64(t8[l], t8[l + 2]); \
				u[l + 1] = _mm256_unpackhi_epi64(t8[l],	\
				    t8[l + 2]);				\
				u[l + 2] = _mm256_unpacklo_epi64(t8[l + 1], \
				    t8[l + 3]);				\
				u[l + 3] = _mm256_unpackhi_epi64(t8[l + 1], \
				    t8[l + 3]);				\
			}						\
			for (l = 0; l < 4; l++) {			\
				w[8 * i + l] = _mm256_shuffle_epi8(	\
				    _mm256_permute2x128_si256(u[l],	\
				    u[l + 4], 0x20), bswap);		\
				w[8 * i + l + 4] = _mm256_shuffle_epi8(	\
				    _mm256_permute2x128_si256(u[l],	\
				    u[l + 4], 0x31), bswap);		\
			}						\
		}							\
		a = st[0]; b = st[1]; c = st[2]; d = st[3];		\
		e = st[4]; f = st[5]; g = st[6]; h = st[7];		\
		for (t = 0; t < 64; t++) {				\
			__m256i t1, t2, wt;				\
									\
			if (t < 16) {					\
				wt = w[t];				\
			} else {					\
				__m256i w15 = w[(t - 15) & 15];		\
				__m256i w2 = w[(t - 2) & 15];		\
				__m256i s0 = XOR3(ROR(w15, 7),		\
				    ROR(w15, 18), _mm256_srli_epi32(w15, 3)); \
				__m256i s1 = XOR3(ROR(w2, 17),		\
				    ROR(w2, 19), _mm256_srli_epi32(w2, 10)); \
				wt = _mm256_add_epi32(			\
				    _mm256_add_epi32(w[t & 15], s0),	\
				    _mm256_add_epi32(w[(t - 7) & 15], s1)); \
				w[t & 15] = wt;				\
			}						\
			t1 = _mm256_add_epi32(				\
			    _mm256_add_epi32(h, XOR3(ROR(e, 6),		\
			    ROR(e, 11), ROR(e, 25))),			\
			    _mm256_add_epi32(CH(e, f, g),		\
			    _mm256_add_epi32(wt, _mm256_set1_epi32(	\
			    (int)sha256_k[t]))));			\
			t2 = _mm256_add_epi32(XOR3(ROR(a, 2), ROR(a, 13), \
			    ROR(a, 22)), MAJ(a, b, c));			\
			h = g; g = f; f = e;				\
			e = _mm256_add_epi32(d, t1);			\
			d = c; c = b; b = a;				\
			a = _mm256_add_epi32(t1, t2);			\
		}							\
		st[0] = _mm256_add_epi32(st[0], a);			\
		st[1] = _mm256_add_epi32(st[1], b);			\
		st[2] = _mm256_add_epi32(st[2], c);			\
		st[3] = _mm256_add_epi32(st[3], d);			\
		st[4] = _mm256_add_epi32(st[4], e);			\
		st[5] = _mm256_add_epi32(st[5], f);			\
		st[6] = _mm256_add_epi32(st[6], g);			\
		st[7] = _mm256_add_epi32(st[7], h);			\
	}								\
	for (i = 0; i < 8; i++)						\
		_mm256_storeu_si256((__m256i *)tmp[i], st[i]);		\
	for (l = 0; l < 8; l++) {					\
		for (i = 0; i < 8; i++)					\
			ctx[l]->h[i] = tmp[i][l];			\
		ctx[l]->len += 64 * (uint64_t)nblocks;			\
	}

#define CH(x, y, z)	_mm256_xor_si256(_mm256_and_si256(x, y),	\
	_mm256_andnot_si256(x, z))
#define MAJ(x, y, z)	_mm256_or_si256(_mm256_and_si256(x, y),		\
	_mm256_and_si256(z, _mm256_or_si256(x, y)))
#define XOR3(x, y, z)	_mm256_xor_si256(_mm256_xor_si256(x, y), z)
#define ROR(x, n)	_mm256_or_si256(_mm256_srli_epi32(x, n),	\
	_mm256_slli_epi32(x, 32 - (n)))

__attribute__((target("avx2"))) static void
x8_avx2(struct sha256 *ctx[8], const uint8_t *p[8], size_t nblocks)
{
	X8_BODY
}

#undef CH
#undef MAJ
#undef XOR3
#undef ROR
/* AVX-512VL: a native rotate, and three-input logic in one instruction
 * (truth tables 0x96 = x^y^z, 0xca = x?y:z, 0xe8 = majority). */
#define CH(x, y, z)	_mm256_ternarylogic_epi32(x, y, z, 0xca)
#define MAJ(x, y, z)	_mm256_ternarylogic_epi32(x, y, z, 0xe8)
#define XOR3(x, y, z)	_mm256_ternarylogic_epi32(x, y, z, 0x96)
#define ROR(x, n)	_mm256_ror_epi32(x, n)

__attribute__((target("avx2,avx512f,avx512vl"))) static void
x8_avx512vl(struct sha256 *ctx[8], const uint8_t *p[8], size_t nblocks)
{
	X8_BODY
}

sha256_x8_fn
sha256_x8_get(void)
{
	const char *force = getenv("GPUPV_PREP_SHA256");

	if (force && strcmp(force, "scalar") == 0)
		return NULL;
	__builtin_cpu_init();
	if ((!force || strcmp(force, "avx2") != 0) &&
	    __builtin_cpu_supports("avx512vl"))
		return x8_avx512vl;
	if (__builtin_cpu_supports("avx2"))
		return x8_avx2;
	return NULL;
}

#else

sha256_x8_fn
sha256_x8_get(void)
{
	return NULL;
}

#endif
