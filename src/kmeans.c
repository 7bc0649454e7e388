/*
 * kmeans.c — k-means clustering as an aggregate, for segments nobody defined.
 *
 * ecrm.kmeans(features float8[], k [, max_iterations, seed]) collects the
 * points of its rows and returns the k centroids as a k x d array;
 * ecrm.kmeans_assign(features, centroids) gives a point's cluster.
 *
 * The start is k-means++ (Arthur & Vassilvitskii, 2007): the first centre
 * is a point drawn uniformly, each further one a point drawn with
 * probability proportional to its squared distance from the nearest centre
 * already chosen.  Then Lloyd's iterations: assign every point to its
 * nearest centre, move each centre to the mean of its points, until no
 * point changes cluster or max_iterations is reached.  A cluster left empty
 * takes the point farthest from its centre.
 *
 * Points are sorted before seeding, so the result depends on the set of
 * points and the seed only, not on the order rows arrive in (parallel
 * workers deliver them in any order).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "ecrm.h"

#define KMEANS_MAX_DIM		1000
#define KMEANS_MAX_K		10000
#define KMEANS_MAX_ITER		100000

typedef struct KMeansState
{
	int			dim;
	int			k;
	int			max_iter;
	int64		seed;
	int64		n;				/* points collected */
	int64		cap;			/* room for this many points */
	double	   *points;			/* n x dim, row major */
} KMeansState;

/* The elements of a float8[] feature vector, checked. */
static double *
FeatureVector(ArrayType *arr, int *dim, const char *what)
{
	int			n;

	if (ARR_ELEMTYPE(arr) != FLOAT8OID)
		elog(ERROR, "%s is not a double precision array", what);
	if (ARR_NDIM(arr) != 1 && !(ARR_NDIM(arr) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n < 1 || n > KMEANS_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have between 1 and %d elements, not %d", what, KMEANS_MAX_DIM, n)));
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL", what),
				 errhint("Replace missing features with a value, for example with coalesce().")));
	*dim = n;
	return (double *) ((char *) arr + ARR_OVERHEAD_NONULLS(1));
}

static void
CheckFinite(const double *v, int dim, const char *what)
{
	int			i;

	for (i = 0; i < dim; i++)
		if (isnan(v[i]) || isinf(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be finite, element %d is %s", what, i + 1,
							isnan(v[i]) ? "NaN" : "infinite")));
}

static void
CheckParams(int k, int max_iter)
{
	if (k < 1 || k > KMEANS_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d", KMEANS_MAX_K, k)));
	if (max_iter < 1 || max_iter > KMEANS_MAX_ITER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_iterations must be between 1 and %d, not %d", KMEANS_MAX_ITER, max_iter)));
}

/* Make room for more points (huge allocations allowed, sizes checked). */
static void
Grow(KMeansState *st, int64 need, MemoryContext cxt)
{
	int64		newcap;
	Size		bytes;

	if (need <= st->cap)
		return;
	newcap = Max(need, Max(st->cap * 2, 1024));
	if ((double) newcap * st->dim * sizeof(double) > (double) MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many points for k-means (" INT64_FORMAT " of %d dimensions)", need, st->dim)));
	bytes = mul_size(mul_size((Size) newcap, st->dim), sizeof(double));
	if (st->points == NULL)
		st->points = MemoryContextAllocHuge(cxt, bytes);
	else
		st->points = repalloc_huge(st->points, bytes);
	st->cap = newcap;
}

static MemoryContext
AggContext(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "kmeans aggregate function called in non-aggregate context");
	return aggcontext;
}

PG_FUNCTION_INFO_V1(ecrm_kmeans_trans);
/* kmeans transition: collect one point (rows with a NULL point are skipped) */
Datum
ecrm_kmeans_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	KMeansState *st = PG_ARGISNULL(0) ? NULL : (KMeansState *) PG_GETARG_POINTER(0);
	int			k,
				max_iter,
				dim;
	int64		seed;
	double	   *v;

	if (PG_ARGISNULL(1))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	if (PG_ARGISNULL(2) || (PG_NARGS() > 3 && (PG_ARGISNULL(3) || PG_ARGISNULL(4))))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k, max_iterations and seed of kmeans must not be NULL")));
	k = PG_GETARG_INT32(2);
	max_iter = PG_NARGS() > 3 ? PG_GETARG_INT32(3) : 100;
	seed = PG_NARGS() > 3 ? PG_GETARG_INT32(4) : 0;
	v = FeatureVector(PG_GETARG_ARRAYTYPE_P(1), &dim, "features");
	CheckFinite(v, dim, "features");
	if (st == NULL)
	{
		CheckParams(k, max_iter);
		st = MemoryContextAllocZero(aggcontext, sizeof(KMeansState));
		st->dim = dim;
		st->k = k;
		st->max_iter = max_iter;
		st->seed = seed;
	}
	else if (st->k != k || st->max_iter != max_iter || st->seed != seed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k, max_iterations and seed of kmeans must be the same in every row")));
	if (dim != st->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every features array must have %d elements, not %d", st->dim, dim)));
	Grow(st, st->n + 1, aggcontext);
	memcpy(st->points + st->n * st->dim, v, sizeof(double) * dim);
	st->n++;
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(ecrm_kmeans_combine);
/* kmeans combine: the points of both states */
Datum
ecrm_kmeans_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	KMeansState *a = PG_ARGISNULL(0) ? NULL : (KMeansState *) PG_GETARG_POINTER(0);
	KMeansState *b = PG_ARGISNULL(1) ? NULL : (KMeansState *) PG_GETARG_POINTER(1);

	if (b == NULL || b->n == 0)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = MemoryContextAllocZero(aggcontext, sizeof(KMeansState));
		a->dim = b->dim;
		a->k = b->k;
		a->max_iter = b->max_iter;
		a->seed = b->seed;
	}
	if (a->dim != b->dim || a->k != b->k || a->max_iter != b->max_iter || a->seed != b->seed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k, max_iterations, seed and the number of features of kmeans must be the same in every row")));
	Grow(a, a->n + b->n, aggcontext);
	memcpy(a->points + a->n * a->dim, b->points, sizeof(double) * b->n * b->dim);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

typedef struct KMeansWire
{
	int32		dim;
	int32		k;
	int32		max_iter;
	int32		pad;
	int64		seed;
	int64		n;
} KMeansWire;

PG_FUNCTION_INFO_V1(ecrm_kmeans_serialize);
/* kmeans serial function (parallel workers to leader; same machine) */
Datum
ecrm_kmeans_serialize(PG_FUNCTION_ARGS)
{
	KMeansState *st = (KMeansState *) PG_GETARG_POINTER(0);
	KMeansWire	w = {st->dim, st->k, st->max_iter, 0, st->seed, st->n};
	Size		pbytes = mul_size(mul_size((Size) st->n, st->dim), sizeof(double));
	Size		total = add_size(add_size(VARHDRSZ, sizeof(w)), pbytes);
	bytea	   *out;

	AggContext(fcinfo);
	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many points for a parallel k-means (" INT64_FORMAT ")", st->n),
				 errhint("Run it without parallel workers: SET max_parallel_workers_per_gather = 0.")));
	out = palloc(total);
	SET_VARSIZE(out, total);
	memcpy(VARDATA(out), &w, sizeof(w));
	if (pbytes > 0)
		memcpy(VARDATA(out) + sizeof(w), st->points, pbytes);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(ecrm_kmeans_deserialize);
/* kmeans deserial function */
Datum
ecrm_kmeans_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = AggContext(fcinfo);
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	KMeansWire	w;
	KMeansState *st;

	if (VARSIZE_ANY_EXHDR(b) < sizeof(w))
		elog(ERROR, "kmeans state is truncated");
	memcpy(&w, VARDATA_ANY(b), sizeof(w));
	if (w.dim < 1 || w.dim > KMEANS_MAX_DIM || w.n < 0 ||
		VARSIZE_ANY_EXHDR(b) != sizeof(w) + (Size) w.n * w.dim * sizeof(double))
		elog(ERROR, "kmeans state is corrupted");
	st = MemoryContextAllocZero(aggcontext, sizeof(KMeansState));
	st->dim = w.dim;
	st->k = w.k;
	st->max_iter = w.max_iter;
	st->seed = w.seed;
	Grow(st, Max(w.n, 1), aggcontext);
	memcpy(st->points, VARDATA_ANY(b) + sizeof(w), sizeof(double) * w.n * w.dim);
	st->n = w.n;
	PG_RETURN_POINTER(st);
}

static inline double
Dist2(const double *a, const double *b, int dim)
{
	double		s = 0;
	int			i;

	for (i = 0; i < dim; i++)
	{
		double		d = a[i] - b[i];

		s += d * d;
	}
	return s;
}

static int
ComparePoints(const void *a, const void *b, void *arg)
{
	int			dim = *(int *) arg;
	const double *x = a;
	const double *y = b;
	int			i;

	for (i = 0; i < dim; i++)
	{
		if (x[i] < y[i])
			return -1;
		if (x[i] > y[i])
			return 1;
	}
	return 0;
}

/* Index of the nearest centre and the squared distance to it. */
static int
Nearest(const double *p, const double *centres, int k, int dim, double *d2)
{
	int			best = 0,
				c;
	double		bestd = Dist2(p, centres, dim);

	for (c = 1; c < k; c++)
	{
		double		d = Dist2(p, centres + (Size) c * dim, dim);

		if (d < bestd)
		{
			bestd = d;
			best = c;
		}
	}
	if (d2)
		*d2 = bestd;
	return best;
}

/* k-means++ seeding into centres (k x dim). */
static void
SeedCentres(const KMeansState *st, double *centres, pg_prng_state *rng, MemoryContext cxt)
{
	int			dim = st->dim;
	int64		n = st->n,
				i;
	double	   *d2 = MemoryContextAllocHuge(cxt, mul_size((Size) n, sizeof(double)));
	int			c;
	int64		first = (int64) pg_prng_uint64_range(rng, 0, (uint64) (n - 1));

	memcpy(centres, st->points + first * dim, sizeof(double) * dim);
	for (i = 0; i < n; i++)
		d2[i] = Dist2(st->points + i * dim, centres, dim);
	for (c = 1; c < st->k; c++)
	{
		double		total = 0,
					r,
					acc = 0;
		int64		pick = n - 1;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < n; i++)
			total += d2[i];
		if (total <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means cannot find %d clusters: the points hold only %d distinct values", st->k, c),
					 errhint("Ask for fewer clusters.")));
		r = pg_prng_double(rng) * total;
		for (i = 0; i < n; i++)
		{
			acc += d2[i];
			if (acc > r && d2[i] > 0)
			{
				pick = i;
				break;
			}
		}
		while (d2[pick] <= 0 && pick > 0)
			pick--;
		memcpy(centres + (Size) c * dim, st->points + pick * dim, sizeof(double) * dim);
		for (i = 0; i < n; i++)
		{
			double		d = Dist2(st->points + i * dim, centres + (Size) c * dim, dim);

			if (d < d2[i])
				d2[i] = d;
			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(d2);
}

PG_FUNCTION_INFO_V1(ecrm_kmeans_final);
/* kmeans final: k-means++ then Lloyd's iterations; the k x d centroids */
Datum
ecrm_kmeans_final(PG_FUNCTION_ARGS)
{
	KMeansState *st;
	MemoryContext cxt,
				old;
	int			dim,
				k,
				iter,
				c;
	int64		n,
				i;
	double	   *centres,
			   *sums;
	int64	   *counts;
	int		   *assign;
	pg_prng_state rng;
	Datum	   *elems;
	int			dims[2],
				lbs[2] = {1, 1};
	ArrayType  *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (KMeansState *) PG_GETARG_POINTER(0);
	n = st->n;
	dim = st->dim;
	k = st->k;
	if (n < k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means needs at least k = %d points, got " INT64_FORMAT, k, n)));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "ecrm kmeans", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	/* the order rows arrived in must not matter */
	qsort_arg(st->points, n, sizeof(double) * dim, ComparePoints, &dim);

	centres = palloc(mul_size(mul_size(k, dim), sizeof(double)));
	sums = palloc(mul_size(mul_size(k, dim), sizeof(double)));
	counts = palloc(sizeof(int64) * k);
	assign = MemoryContextAllocHuge(cxt, mul_size((Size) n, sizeof(int)));
	pg_prng_seed(&rng, (uint64) st->seed);
	SeedCentres(st, centres, &rng, cxt);
	for (i = 0; i < n; i++)
		assign[i] = -1;

	for (iter = 0; iter < st->max_iter; iter++)
	{
		int64		changed = 0;

		for (i = 0; i < n; i++)
		{
			int			a = Nearest(st->points + i * dim, centres, k, dim, NULL);

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			if (a != assign[i])
			{
				assign[i] = a;
				changed++;
			}
		}
		if (changed == 0)
			break;
		memset(sums, 0, sizeof(double) * k * dim);
		memset(counts, 0, sizeof(int64) * k);
		for (i = 0; i < n; i++)
		{
			int			d;
			double	   *s = sums + (Size) assign[i] * dim;
			const double *p = st->points + i * dim;

			for (d = 0; d < dim; d++)
				s[d] += p[d];
			counts[assign[i]]++;
		}
		for (c = 0; c < k; c++)
		{
			int			d;

			if (counts[c] == 0)
			{
				/* an empty cluster takes the point farthest from its centre */
				double		worst = -1;
				int64		far = 0;

				for (i = 0; i < n; i++)
				{
					double		dd = Dist2(st->points + i * dim, centres + (Size) assign[i] * dim, dim);

					if (dd > worst && counts[assign[i]] > 1)
					{
						worst = dd;
						far = i;
					}
				}
				counts[assign[far]]--;
				for (d = 0; d < dim; d++)
					sums[(Size) assign[far] * dim + d] -= st->points[far * dim + d];
				assign[far] = c;
				counts[c] = 1;
				memcpy(sums + (Size) c * dim, st->points + far * dim, sizeof(double) * dim);
			}
		}
		for (c = 0; c < k; c++)
		{
			int			d;

			for (d = 0; d < dim; d++)
				centres[(Size) c * dim + d] = sums[(Size) c * dim + d] / counts[c];
		}
	}

	MemoryContextSwitchTo(old);
	elems = palloc(sizeof(Datum) * k * dim);
	for (i = 0; i < (int64) k * dim; i++)
		elems[i] = Float8GetDatum(centres[i]);
	dims[0] = k;
	dims[1] = dim;
	result = construct_md_array(elems, NULL, 2, dims, lbs, FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	MemoryContextDelete(cxt);
	PG_RETURN_ARRAYTYPE_P(result);
}

PG_FUNCTION_INFO_V1(ecrm_kmeans_assign);
/* kmeans_assign(features, centroids): the 1-based number of the nearest centroid */
Datum
ecrm_kmeans_assign(PG_FUNCTION_ARGS)
{
	ArrayType  *centroids = PG_GETARG_ARRAYTYPE_P(1);
	int			dim;
	double	   *v = FeatureVector(PG_GETARG_ARRAYTYPE_P(0), &dim, "features");
	int			k;

	CheckFinite(v, dim, "features");
	if (ARR_ELEMTYPE(centroids) != FLOAT8OID)
		elog(ERROR, "centroids is not a double precision array");
	if (ARR_NDIM(centroids) != 2 || ARR_HASNULL(centroids) || ARR_DIMS(centroids)[1] != dim ||
		ARR_DIMS(centroids)[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids must be a k x %d array without NULLs, as ecrm.kmeans returns", dim)));
	k = ARR_DIMS(centroids)[0];
	CheckFinite((double *) ((char *) centroids + ARR_OVERHEAD_NONULLS(2)), k * dim, "centroids");
	PG_RETURN_INT32(Nearest(v, (double *) ((char *) centroids + ARR_OVERHEAD_NONULLS(2)), k, dim, NULL) + 1);
}
