/*
 * als.c — implicit-feedback matrix factorisation by alternating least
 * squares (Hu, Koren & Volinsky, ICDM 2008), and serving from its factors.
 *
 * A rating r_ui > 0 means preference p_ui = 1 with confidence
 * c_ui = 1 + alpha r_ui; every other pair has preference 0 and confidence 1.
 * ALS alternates: with the product factors Y fixed, every customer's x_u
 * solves
 *
 *     (Y'Y + lambda I + sum_i (c_ui - 1) y_i y_i') x_u = sum_i c_ui y_i
 *
 * over the products i the customer rated (the Y'Y trick of the paper keeps
 * the cost linear in the ratings), then the same for products with X fixed.
 * The solve is either a few conjugate-gradient steps warm-started from the
 * previous factors (as the `implicit` library does: O(f^2 + n_u f) per step)
 * or an exact Cholesky factorisation (O(n_u f^2 + f^3)).
 *
 * Serving folds the customer in from the current history with one exact
 * solve against the stored product factors, so purchases made after training
 * count at once, and explains each recommendation as the paper's section 5
 * does: score(u, i) = sum_j s_ij c_uj with s_ij = y_i' W y_j and W the
 * inverse of the matrix above; the history product with the largest term is
 * the reason.  Product factors are cached per backend, keyed by model id (a
 * rebuild always takes a new id).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "ecrm.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "recommend.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define MAX_FACTORS 1024
#define MAX_ITERATIONS 1000
#define MAX_CG_STEPS 100

typedef struct AlsParams
{
	int			f;
	double		reg;
	double		alpha;
	int			cg_steps;		/* 0: exact Cholesky solves */
} AlsParams;

/* a . b, with four partial sums so the additions need not wait on each other */
static inline double
Dot(const float *pg_restrict a, const double *pg_restrict b, int f)
{
	double		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= f; i += 4)
	{
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < f; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

/* out = G v for a symmetric G, column by column (axpy form, which the compiler vectorises) */
static inline void
SymMatVec(const double *pg_restrict G, const double *pg_restrict v, double *pg_restrict out, int f)
{
	int			a,
				c;

	memset(out, 0, sizeof(double) * f);
	for (c = 0; c < f; c++)
	{
		const double *pg_restrict g = G + (Size) c * f;
		double		vc = v[c];

		for (a = 0; a < f; a++)
			out[a] += g[a] * vc;
	}
}

/* out += coef * y */
static inline void
Axpy(double coef, const float *pg_restrict y, double *pg_restrict out, int f)
{
	int			a;

	for (a = 0; a < f; a++)
		out[a] += coef * y[a];
}

/* G = Y'Y + reg I over the n rows of Y (n x f, floats). */
static void
Gram(const float *Y, int32 n, const AlsParams *p, double *G)
{
	int			f = p->f;
	int32		r;
	int			a,
				b;

	memset(G, 0, sizeof(double) * f * f);
	for (r = 0; r < n; r++)
	{
		const float *y = Y + (Size) r * f;

		if ((r & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (a = 0; a < f; a++)
		{
			double		ya = y[a];
			double	   *g = G + (Size) a * f;

			for (b = a; b < f; b++)
				g[b] += ya * y[b];
		}
	}
	for (a = 0; a < f; a++)
	{
		for (b = 0; b < a; b++)
			G[(Size) a * f + b] = G[(Size) b * f + a];
		G[(Size) a * f + a] += p->reg;
	}
}

/* In-place Cholesky factorisation A = L L' (lower triangle); false if not positive definite. */
static bool
Cholesky(double *A, int f)
{
	int			i,
				j,
				k;

	for (j = 0; j < f; j++)
	{
		double		d = A[(Size) j * f + j];

		for (k = 0; k < j; k++)
			d -= A[(Size) j * f + k] * A[(Size) j * f + k];
		if (!(d > 0))
			return false;
		d = sqrt(d);
		A[(Size) j * f + j] = d;
		for (i = j + 1; i < f; i++)
		{
			double		s = A[(Size) i * f + j];

			for (k = 0; k < j; k++)
				s -= A[(Size) i * f + k] * A[(Size) j * f + k];
			A[(Size) i * f + j] = s / d;
		}
	}
	return true;
}

/* Solve L L' x = b in place (b becomes x). */
static void
CholeskySolve(const double *L, int f, double *b)
{
	int			i,
				k;

	for (i = 0; i < f; i++)
	{
		double		s = b[i];

		for (k = 0; k < i; k++)
			s -= L[(Size) i * f + k] * b[k];
		b[i] = s / L[(Size) i * f + i];
	}
	for (i = f - 1; i >= 0; i--)
	{
		double		s = b[i];

		for (k = i + 1; k < f; k++)
			s -= L[(Size) k * f + i] * b[k];
		b[i] = s / L[(Size) i * f + i];
	}
}

/*
 * A = G + sum_i alpha r_i y_i y_i' and b = sum_i (1 + alpha r_i) y_i over a
 * list of (index, rating); then factor A.  False when A is singular.
 */
static bool
NormalEquations(const double *G, const float *Y, const AlsParams *p, int n,
				const int32 *idx, const float *val, double *A, double *b)
{
	int			f = p->f;
	int			t,
				a,
				c;

	memcpy(A, G, sizeof(double) * f * f);
	memset(b, 0, sizeof(double) * f);
	for (t = 0; t < n; t++)
	{
		const float *y = Y + (Size) idx[t] * f;
		double		cm1 = p->alpha * val[t];

		for (a = 0; a < f; a++)
		{
			double		ya = cm1 * y[a];
			double	   *row = A + (Size) a * f;

			b[a] += (1 + cm1) * y[a];
			for (c = 0; c <= a; c++)
				row[c] += ya * y[c];
		}
	}
	return Cholesky(A, f);
}

/* scratch of one solve */
typedef struct Scratch
{
	double	   *x,
			   *r,
			   *pv,
			   *ap,
			   *A;
} Scratch;

/*
 * Update one factor vector x (float, f long) from its ratings (idx/val over
 * the other side's factors Y) with G = Y'Y + reg I.
 */
static void
SolveOne(float *xout, const double *G, const float *Y, const AlsParams *p,
		 int n, const int32 *idx, const float *val, Scratch *s)
{
	int			f = p->f;
	int			a,
				t,
				step;
	double		rsold,
				rsnew;

	if (n == 0)
	{
		memset(xout, 0, sizeof(float) * f);
		return;
	}
	if (p->cg_steps == 0)
	{
		if (!NormalEquations(G, Y, p, n, idx, val, s->A, s->x))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("als: a least-squares system is singular"),
					 errhint("Raise the regularization.")));
		CholeskySolve(s->A, f, s->x);
		for (a = 0; a < f; a++)
			xout[a] = (float) s->x[a];
		return;
	}

	/* conjugate gradient on A x = b, from the current x */
	for (a = 0; a < f; a++)
		s->x[a] = xout[a];
	SymMatVec(G, s->x, s->r, f);
	for (a = 0; a < f; a++)
		s->r[a] = -s->r[a];
	for (t = 0; t < n; t++)
	{
		const float *y = Y + (Size) idx[t] * f;
		double		conf = 1 + p->alpha * val[t];

		Axpy(conf - (conf - 1) * Dot(y, s->x, f), y, s->r, f);
	}
	rsold = 0;
	for (a = 0; a < f; a++)
	{
		s->pv[a] = s->r[a];
		rsold += s->r[a] * s->r[a];
	}
	for (step = 0; step < p->cg_steps && rsold > 1e-20; step++)
	{
		double		pap = 0,
					alpha;

		SymMatVec(G, s->pv, s->ap, f);
		for (t = 0; t < n; t++)
		{
			const float *y = Y + (Size) idx[t] * f;

			Axpy(p->alpha * val[t] * Dot(y, s->pv, f), y, s->ap, f);
		}
		for (a = 0; a < f; a++)
			pap += s->pv[a] * s->ap[a];
		if (!(pap > 0))
			break;
		alpha = rsold / pap;
		rsnew = 0;
		for (a = 0; a < f; a++)
		{
			s->x[a] += alpha * s->pv[a];
			s->r[a] -= alpha * s->ap[a];
			rsnew += s->r[a] * s->r[a];
		}
		for (a = 0; a < f; a++)
			s->pv[a] = s->r[a] + (rsnew / rsold) * s->pv[a];
		rsold = rsnew;
	}
	for (a = 0; a < f; a++)
		xout[a] = (float) s->x[a];
}

/* One half-step: update every row of X against Y. */
static void
HalfStep(float *X, int32 nx, const float *Y, int32 ny, const int64 *ptr, const int32 *idx,
		 const float *val, const AlsParams *p, double *G, Scratch *s,
		 EcrmProgressState *progress, int64 *done)
{
	int32		r;

	Gram(Y, ny, p, G);
	for (r = 0; r < nx; r++)
	{
		if ((r & 0xFF) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			EcrmProgress(progress, *done + r);
		}
		SolveOne(X + (Size) r * p->f, G, Y, p, (int) (ptr[r + 1] - ptr[r]),
				 idx + ptr[r], val + ptr[r], s);
	}
	*done += nx;
}

static Scratch *
NewScratch(int f)
{
	Scratch    *s = palloc(sizeof(Scratch));

	s->x = palloc(sizeof(double) * f);
	s->r = palloc(sizeof(double) * f);
	s->pv = palloc(sizeof(double) * f);
	s->ap = palloc(sizeof(double) * f);
	s->A = palloc(sizeof(double) * f * f);
	return s;
}

static void
EmitFactors(ReturnSetInfo *rsinfo, const char *side, const int64 *ids, const float *F, int32 n, int f)
{
	Datum	   *elems = palloc(sizeof(Datum) * f);
	text	   *side_text = cstring_to_text(side);
	int32		r;
	int			a;

	for (r = 0; r < n; r++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		ArrayType  *arr;

		for (a = 0; a < f; a++)
			elems[a] = Float4GetDatum(F[(Size) r * f + a]);
		arr = construct_array(elems, f, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
		values[0] = PointerGetDatum(side_text);
		values[1] = Int64GetDatum(ids[r]);
		values[2] = PointerGetDatum(arr);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(arr);
		if ((r & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(elems);
}

/* Train implicit ALS on a rating matrix; returns the factors of both sides. */
PG_FUNCTION_INFO_V1(ecrm_als_train);
Datum
ecrm_als_train(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AlsParams	p;
	int32		iterations;
	int64		seed;
	char	   *solver;
	char	   *query;
	MemoryContext work,
				old;
	EcrmRatings *m;
	float	   *X,
			   *Y;
	double	   *G;
	Scratch    *s;
	pg_prng_state rng;
	Size		need;
	int32		it;
	int64		r;
	EcrmProgressState progress;
	int64		done = 0;
	TimestampTz started = GetCurrentTimestamp();

	for (it = 0; it < 8; it++)
		if (PG_ARGISNULL(it))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("als_train: arguments must not be null")));
	p.f = PG_GETARG_INT32(1);
	iterations = PG_GETARG_INT32(2);
	p.reg = PG_GETARG_FLOAT8(3);
	p.alpha = PG_GETARG_FLOAT8(4);
	seed = PG_GETARG_INT64(5);
	solver = text_to_cstring(PG_GETARG_TEXT_PP(6));
	p.cg_steps = PG_GETARG_INT32(7);

	if (p.f < 1 || p.f > MAX_FACTORS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("factors must be between 1 and %d, not %d", MAX_FACTORS, p.f)));
	if (iterations < 1 || iterations > MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between 1 and %d, not %d", MAX_ITERATIONS, iterations)));
	if (isnan(p.reg) || p.reg <= 0 || p.reg > 1e6)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("regularization must be above 0 and at most 1e6, not %g", p.reg)));
	if (isnan(p.alpha) || p.alpha <= 0 || p.alpha > 1e6)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be above 0 and at most 1e6, not %g", p.alpha)));
	if (strcmp(solver, "cholesky") == 0)
		p.cg_steps = 0;
	else if (strcmp(solver, "cg") == 0)
	{
		if (p.cg_steps < 1 || p.cg_steps > MAX_CG_STEPS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cg_steps must be between 1 and %d, not %d", MAX_CG_STEPS, p.cg_steps)));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown solver \"%s\"", solver),
				 errhint("Use \"cg\" (conjugate gradient) or \"cholesky\" (exact).")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);
	work = AllocSetContextCreate(CurrentMemoryContext, "ecrm als_train", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	m = EcrmLoadRatings(query, "als_train");
	need = add_size(m->bytes, mul_size(add_size(m->nrows, m->ncols), sizeof(float) * p.f));
	need = add_size(need, mul_size((Size) p.f * p.f, sizeof(double) * 2));
	EcrmCheckMemory(need, "als_train", "the factors");
	ereport(NOTICE,
			(errmsg("als_train: " INT64_FORMAT " ratings of %d customers on %d products, %d factors (%.1f s, %.1f MB)",
					m->nnz, m->nrows, m->ncols, p.f, EcrmSecondsSince(started),
					Max(m->peak_bytes, need) / (1024.0 * 1024.0))));

	X = EcrmAllocArray((Size) m->nrows * p.f, sizeof(float));
	Y = EcrmAllocArray((Size) m->ncols * p.f, sizeof(float));
	G = palloc(sizeof(double) * p.f * p.f);
	s = NewScratch(p.f);

	/* Small positive random starts, reproducible from the seed. */
	pg_prng_seed(&rng, (uint64) seed);
	for (r = 0; r < (int64) m->nrows * p.f; r++)
		X[r] = (float) (pg_prng_double(&rng) * 0.01);
	for (r = 0; r < (int64) m->ncols * p.f; r++)
		Y[r] = (float) (pg_prng_double(&rng) * 0.01);

	EcrmProgressStart(&progress, "als_train", "solves", (int64) iterations * (m->nrows + m->ncols));
	for (it = 0; it < iterations; it++)
	{
		HalfStep(X, m->nrows, Y, m->ncols, m->row_ptr, m->row_col, m->row_val, &p, G, s, &progress, &done);
		HalfStep(Y, m->ncols, X, m->nrows, m->col_ptr, m->col_row, m->col_val, &p, G, s, &progress, &done);
		EcrmProgress(&progress, done);
	}
	ereport(NOTICE,
			(errmsg("als_train: %d iterations done (%.1f s)", iterations, EcrmSecondsSince(started))));

	EcrmRecordBuild(m, need, EcrmSecondsSince(started));
	EmitFactors(rsinfo, "customer", m->row_ids, X, m->nrows, p.f);
	EmitFactors(rsinfo, "product", m->col_ids, Y, m->ncols, p.f);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/*
 * The serving cache: product factors of one model, with Y'Y + reg I.
 */
typedef struct AlsModel
{
	int64		model_id;
	AlsParams	p;
	int32		n;
	int64	   *ids;
	float	   *Y;
	double	   *G;
} AlsModel;

static MemoryContext AlsCacheContext = NULL;
static AlsModel *AlsCache = NULL;

static AlsModel *
LoadAlsModel(int64 model_id)
{
	MemoryContext old;
	AlsModel   *am;
	Datum		arg = Int64GetDatum(model_id);
	Oid			argtype = INT8OID;
	bool		isnull;
	uint64		r;
	int			ret;

	if (AlsCache != NULL && AlsCache->model_id == model_id)
		return AlsCache;

	if (AlsCacheContext == NULL)
		AlsCacheContext = AllocSetContextCreate(TopMemoryContext, "ecrm ALS cache", ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(AlsCacheContext);
	AlsCache = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("SELECT (m.params->>'factors')::int, (m.params->>'regularization')::float8, "
								"(m.params->>'alpha')::float8 FROM ecrm.rec_model m "
								"WHERE m.model_id = $1 AND m.kind = 'als'",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ecrm.rec_model failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("ALS model " INT64_FORMAT " does not exist", model_id)));
	old = MemoryContextSwitchTo(AlsCacheContext);
	am = palloc0(sizeof(AlsModel));
	am->model_id = model_id;
	am->p.f = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || am->p.f < 1 || am->p.f > MAX_FACTORS)
		elog(ERROR, "ALS model " INT64_FORMAT " has no valid factor count", model_id);
	am->p.reg = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull || !(am->p.reg > 0))
		elog(ERROR, "ALS model " INT64_FORMAT " has no valid regularization", model_id);
	am->p.alpha = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull || !(am->p.alpha > 0))
		elog(ERROR, "ALS model " INT64_FORMAT " has no valid alpha", model_id);
	MemoryContextSwitchTo(old);

	ret = SPI_execute_with_args("SELECT f.product_id, f.factors FROM ecrm.rec_product_factor f "
								"WHERE f.model_id = $1 ORDER BY f.product_id",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ecrm.rec_product_factor failed: %s", SPI_result_code_string(ret));
	old = MemoryContextSwitchTo(AlsCacheContext);
	am->n = (int32) SPI_processed;
	am->ids = EcrmAllocArray(am->n, sizeof(int64));
	am->Y = EcrmAllocArray((Size) am->n * am->p.f, sizeof(float));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		ArrayType  *a;

		am->ids[r] = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		a = DatumGetArrayTypeP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		if (isnull || ARR_ELEMTYPE(a) != FLOAT4OID || ARR_NDIM(a) != 1 || array_contains_nulls(a) ||
			ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) != am->p.f)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("factors of product " INT64_FORMAT " in ALS model " INT64_FORMAT " are malformed",
							am->ids[r], model_id),
					 errhint("Retrain the model.")));
		memcpy(am->Y + (Size) r * am->p.f, EcrmArrayData(a), sizeof(float) * am->p.f);
	}
	am->G = palloc(sizeof(double) * am->p.f * am->p.f);
	Gram(am->Y, am->n, &am->p, am->G);
	MemoryContextSwitchTo(old);
	SPI_finish();
	AlsCache = am;
	return am;
}

typedef struct AlsServeState
{
	AlsModel   *am;
	int32	   *idx;			/* the customer's rated products (model indexes) */
	float	   *val;
	int			n;
	double	   *A;				/* Cholesky factor of the customer's system */
	double	   *x;
	double	   *v;
} AlsServeState;

/* Fold the customer in (one exact solve) and score every product. */
static int
AlsScore(void *state, const HistoryInput *h, const int *rows, int nrows, EcrmCandidate **out)
{
	AlsServeState *st = state;
	AlsModel   *am = st->am;
	int			f = am->p.f;
	int			i;
	int32		j;
	EcrmCandidate *c;

	st->n = 0;
	for (i = 0; i < nrows; i++)
	{
		int			o = rows[i];
		int32		ix;

		if (h->weight[o] <= 0 || (ix = EcrmFindId(am->ids, am->n, h->product[o])) < 0)
			continue;
		st->idx[st->n] = ix;
		st->val[st->n] = (float) h->weight[o];
		st->n++;
	}
	if (st->n == 0 || !NormalEquations(am->G, am->Y, &am->p, st->n, st->idx, st->val, st->A, st->x))
		return 0;
	CholeskySolve(st->A, f, st->x);
	c = EcrmAllocArray(am->n, sizeof(EcrmCandidate));
	for (j = 0; j < am->n; j++)
	{
		if ((j & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		c[j].product = am->ids[j];
		c[j].score = Dot(am->Y + (Size) j * f, st->x, f);
		c[j].has_because = false;
	}
	*out = c;
	return am->n;
}

/* The reason for each chosen product: the history product j with the largest s_ij c_uj. */
static void
AlsExplain(void *state, const HistoryInput *h, const int *rows, int nrows, EcrmCandidate *top, int ntop)
{
	AlsServeState *st = state;
	AlsModel   *am = st->am;
	int			f = am->p.f;
	int			t,
				i,
				a;

	for (t = 0; t < ntop; t++)
	{
		int32		c = EcrmFindId(am->ids, am->n, top[t].product);
		double		best = -INFINITY;

		for (a = 0; a < f; a++)
			st->v[a] = am->Y[(Size) c * f + a];
		CholeskySolve(st->A, f, st->v);
		for (i = 0; i < st->n; i++)
		{
			double		term = Dot(am->Y + (Size) st->idx[i] * f, st->v, f) * (1 + am->p.alpha * st->val[i]);
			int64		p = am->ids[st->idx[i]];

			if (term > best || (term == best && p < top[t].because))
			{
				best = term;
				top[t].because = p;
				top[t].has_because = true;
			}
		}
	}
}

/* Candidate products of an ALS model for customers, with popularity to top up. */
PG_FUNCTION_INFO_V1(ecrm_als_candidates);
Datum
ecrm_als_candidates(PG_FUNCTION_ARGS)
{
	MemoryContext work,
				old;
	EcrmServeArgs *a;
	AlsServeState st;
	EcrmServeModel model = {&st, AlsScore, AlsExplain};
	int			f;

	InitMaterializedSRF(fcinfo, 0);
	work = AllocSetContextCreate(CurrentMemoryContext, "ecrm ALS candidates", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	a = EcrmServeParse(fcinfo);
	st.am = LoadAlsModel(a->model_id);
	f = st.am->p.f;
	st.idx = palloc(sizeof(int32) * Max(a->h.n, 1));
	st.val = palloc(sizeof(float) * Max(a->h.n, 1));
	st.A = palloc(sizeof(double) * f * f);
	st.x = palloc(sizeof(double) * f);
	st.v = palloc(sizeof(double) * f);
	EcrmServeRun(fcinfo, a, &model);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/* The products closest to one product by the cosine of their ALS factors. */
PG_FUNCTION_INFO_V1(ecrm_als_similar);
Datum
ecrm_als_similar(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		model_id = PG_GETARG_INT64(0);
	int64		product = PG_GETARG_INT64(1);
	int32		k = PG_GETARG_INT32(2);
	AlsModel   *am;
	EcrmCandidate *c;
	double	   *y,
				ny = 0;
	int32		i,
				self;
	int			a,
				n = 0;

	EcrmCheckK(k, EcrmMaxK, "k");
	InitMaterializedSRF(fcinfo, 0);
	am = LoadAlsModel(model_id);
	self = EcrmFindId(am->ids, am->n, product);
	if (self < 0)
		return (Datum) 0;
	y = palloc(sizeof(double) * am->p.f);
	for (a = 0; a < am->p.f; a++)
	{
		y[a] = am->Y[(Size) self * am->p.f + a];
		ny += y[a] * y[a];
	}
	ny = sqrt(ny);
	c = EcrmAllocArray(am->n, sizeof(EcrmCandidate));
	for (i = 0; i < am->n; i++)
	{
		const float *z = am->Y + (Size) i * am->p.f;
		double		nz = 0;

		if (i == self)
			continue;
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (a = 0; a < am->p.f; a++)
			nz += (double) z[a] * z[a];
		if (nz == 0 || ny == 0)
			continue;
		c[n].product = am->ids[i];
		c[n].score = Dot(z, y, am->p.f) / (sqrt(nz) * ny);
		c[n].because = product;
		c[n].has_because = true;
		n++;
	}
	n = EcrmTopK(c, n, k);
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(c[i].product);
		values[1] = Float8GetDatum(c[i].score);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
