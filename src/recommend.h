/*
 * recommend.h — the rating matrix shared by the recommendation kernels:
 * item-item similarity (recommend.c) and implicit ALS (als.c).
 *
 * A rating matrix is read from a query returning (customer, product, weight)
 * rows, any number per pair, in any order.  Ids become dense indexes; the
 * weights of a pair are summed; pairs whose sum is not positive are dropped.
 * The matrix is kept twice, by customer (CSR) and by product (CSC).
 */
#ifndef ECRM_RECOMMEND_H
#define ECRM_RECOMMEND_H

#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/array.h"
#include "utils/memutils.h"

/* Largest number of distinct customers or products in one matrix. */
#define ECRM_MAX_MATRIX_DIM	(PG_INT32_MAX / 2)

typedef struct EcrmRatings
{
	int32		nrows;			/* customers */
	int32		ncols;			/* products */
	int64		nnz;			/* distinct (customer, product) pairs */
	int64		input_rows;		/* rows the query returned */
	int64	   *row_ids;		/* [nrows] customer ids, ascending */
	int64	   *col_ids;		/* [ncols] product ids, ascending */
	/* by customer: row r holds row_col/row_val[row_ptr[r] .. row_ptr[r+1]) */
	int64	   *row_ptr;
	int32	   *row_col;
	float	   *row_val;
	/* by product: column c holds col_row/col_val[col_ptr[c] .. col_ptr[c+1]) */
	int64	   *col_ptr;
	int32	   *col_row;
	float	   *col_val;
	Size		bytes;			/* memory the matrix uses */
	Size		peak_bytes;		/* most memory used while loading */
} EcrmRatings;

/*
 * Read a rating matrix from a query (run through SPI, read in batches).
 * "what" names the calling function in errors and notices; memory is bounded
 * by maintenance_work_mem.  Errors on a query of the wrong shape, NaN,
 * infinite or negative weights, and an empty result.
 */
extern EcrmRatings *EcrmLoadRatings(const char *query, const char *what);

/* Remember the figures of a finished build (ecrm._rec_last_build()). */
extern void EcrmRecordBuild(const EcrmRatings *m, Size peak_bytes, double seconds);

/* Bytes the matrix of these sizes needs (both orientations), for checks. */
extern Size EcrmRatingsBytes(int64 nrows, int64 ncols, int64 nnz);

/* Check a size against maintenance_work_mem; "what" names the step. */
extern void EcrmCheckMemory(Size bytes, const char *fn, const char *what);

/* Allocate n elements of size sz, zeroed, huge allowed, after an overflow check. */
extern void *EcrmAllocArray(Size n, Size sz);

/*
 * The data of an array without nulls (ARR_DATA_PTR trips -Wsign-compare).
 */
#define EcrmArrayData(a) \
	((void *) ((char *) (a) + ARR_OVERHEAD_NONULLS(ARR_NDIM(a))))

/* A hash of a 64-bit id for simplehash tables (murmur3's finaliser). */
static inline uint32
EcrmHashInt64(int64 key)
{
	uint64		h = (uint64) key;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

/* Binary search of a sorted id array; -1 when absent. */
extern int32 EcrmFindId(const int64 *ids, int32 n, int64 id);

/*
 * Progress reporting: call EcrmProgressStart once, then EcrmProgress with the
 * work done; a NOTICE goes out at each tenth of the work when at least
 * ecrm.progress_interval seconds passed since the last one.
 */
typedef struct EcrmProgressState
{
	const char *what;
	const char *unit;
	int64		total;
	int			next_tenth;
	TimestampTz started;
	TimestampTz last;
} EcrmProgressState;

extern void EcrmProgressStart(EcrmProgressState *p, const char *what, const char *unit, int64 total);
extern void EcrmProgress(EcrmProgressState *p, int64 done);
extern double EcrmSecondsSince(TimestampTz t);

/*
 * Serving (rec_serve.c): the candidate functions of every model take
 * (model_id, k, customers, only, never, history customer/product/weight/
 * exclude arrays, popular products, popular scores, history reasons) and
 * return the top k per customer as (customer_id, rank, product_id, score,
 * because, popular, reason).
 */
#define EcrmMaxK 10000

typedef struct HistoryInput
{
	int			n;
	int64	   *customer;
	int64	   *product;
	double	   *weight;
	bool	   *exclude;
} HistoryInput;

typedef struct EcrmCandidate
{
	int64		product;
	double		score;
	int64		because;		/* the history product that contributed most */
	bool		has_because;
	int32		support;		/* item_knn: customers who have both */
} EcrmCandidate;

typedef struct EcrmServeArgs
{
	int64		model_id;
	int32		k;
	int			ncustomers;
	int64	   *customers;		/* sorted */
	int			nonly;			/* -1: no restriction */
	int64	   *only;			/* sorted */
	int			nnever;
	int64	   *never;			/* sorted */
	HistoryInput h;
	int		   *order;			/* history rows sorted by customer */
	int			npopular;
	int64	   *popular;		/* best first */
	double	   *popular_score;
	Datum	   *reasons;		/* reason template per history row, or NULL */
	bool	   *reason_nulls;
} EcrmServeArgs;

/*
 * A model for serving: score() returns the candidates of one customer from
 * its history rows (palloc'd array in *out, any order, unfiltered);
 * explain(), if set, fills "because" of the chosen top candidates.
 */
typedef struct EcrmServeModel
{
	void	   *state;
	int			(*score) (void *state, const HistoryInput *h, const int *rows, int nrows, EcrmCandidate **out);
	void		(*explain) (void *state, const HistoryInput *h, const int *rows, int nrows,
							EcrmCandidate *top, int ntop);
} EcrmServeModel;

extern EcrmServeArgs *EcrmServeParse(FunctionCallInfo fcinfo);
extern void EcrmServeRun(FunctionCallInfo fcinfo, EcrmServeArgs *a, const EcrmServeModel *model);
extern int	EcrmTopK(EcrmCandidate *c, int n, int k);
extern int	EcrmCompareInt64(const void *a, const void *b);
extern void EcrmCheckK(int32 k, int32 max, const char *what);

#endif							/* ECRM_RECOMMEND_H */
