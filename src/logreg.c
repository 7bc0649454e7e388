/*
 * logreg.c — L2-regularised logistic regression: a training aggregate, a
 * predict function and per-feature contributions.
 *
 * logreg_train(features float8[], label bool [, l2 float8]) keeps the rows in
 * its state (up to 1 GB of features), standardises every feature to mean 0
 * and standard deviation 1, and minimises
 *
 *     sum_i logloss(y_i, b + w . z_i) + l2/2 * |w|^2
 *
 * (the intercept b is not penalised: scikit-learn's LogisticRegression with
 * C = 1/l2 on StandardScaler output) by Newton's method: each iteration
 * accumulates the gradient and the Hessian in one pass, solves H d = g with a
 * Cholesky factorisation and takes the longest step 1, 1/2, 1/4, ... that
 * decreases the objective enough (Armijo).  The objective is strictly convex
 * when l2 > 0, so this converges in a handful of iterations.  The model comes
 * back as jsonb with the coefficients folded back to the original scale, so
 * predicting is one dot product.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "ecrm.h"
#include "scoring.h"
#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#define LOGREG_MAX_ITERATIONS	100
#define LOGREG_FORMAT			1

/* ---------------------------------------------------------------------------
 * Feature arrays
 * ------------------------------------------------------------------------- */

/*
 * The values of a float8[] feature array: one-dimensional, no NULLs, every
 * value finite.  Returns a pointer into the array; *n gets its length.
 */
double *
EcrmFloat8Array(ArrayType *a, const char *what, int *n)
{
	double	   *v;
	int			i;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "%s must be a float8 array", what);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional", what, ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL values", what),
				 errhint("Replace missing values, for example with coalesce(), before building the array.")));
	*n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	v = (double *) EcrmArrayData(a);
	for (i = 0; i < *n; i++)
		if (isnan(v[i]) || isinf(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must hold finite numbers, but element %d is %s", what, i + 1,
							isnan(v[i]) ? "NaN" : (v[i] > 0 ? "Infinity" : "-Infinity"))));
	return v;
}

/* ---------------------------------------------------------------------------
 * Training aggregate
 * ------------------------------------------------------------------------- */

typedef struct LogregState
{
	int32		d;				/* features per row; 0 until the first row */
	int64		n;				/* rows kept */
	int64		cap;			/* rows allocated */
	int64		skipped;		/* rows left out: NULL features or label */
	double		l2;
	bool		l2_set;
	double	   *x;				/* n * d values, row after row */
	bool	   *y;
} LogregState;

/* Most rows that fit in 1 GB with d features each. */
static int64
LogregMaxRows(int d)
{
	return (int64) ((MaxAllocSize - 1024) / ((Size) d * sizeof(double) + 1));
}

/* Room for "more" further rows. */
static void
LogregReserve(LogregState *st, int64 more)
{
	int64		need = st->n + more;
	int64		max = LogregMaxRows(st->d);
	int64		cap;

	if (need <= st->cap)
		return;
	if (need > max)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too much training data for logreg_train"),
				 errdetail("With %d features per row, at most " INT64_FORMAT " rows fit in its 1 GB of memory.",
						   st->d, max),
				 errhint("Train on a sample (TABLESAMPLE) or with fewer features.")));
	cap = Max(st->cap * 2, 1024);
	cap = Max(cap, need);
	cap = Min(cap, max);
	if (st->x == NULL)
	{
		st->x = palloc(cap * st->d * sizeof(double));
		st->y = palloc(cap * sizeof(bool));
	}
	else
	{
		st->x = repalloc(st->x, cap * st->d * sizeof(double));
		st->y = repalloc(st->y, cap * sizeof(bool));
	}
	st->cap = cap;
}

static void
LogregSetL2(LogregState *st, double l2)
{
	if (isnan(l2) || isinf(l2) || l2 < 0 || l2 > 1e12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be a number from 0 to 1e12, not %g", l2)));
	if (st->l2_set && st->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same on every row"),
				 errdetail("One row has l2 = %g, another %g.", st->l2, l2)));
	st->l2 = l2;
	st->l2_set = true;
}

/* Transition: logreg_train(features, label [, l2]). */
PG_FUNCTION_INFO_V1(ecrm_logreg_train_trans);
Datum
ecrm_logreg_train_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MemoryContext old;
	LogregState *st;
	ArrayType  *a;
	double	   *v;
	int			d;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_logreg_train_trans called in non-aggregate context");

	if (PG_ARGISNULL(0))
	{
		st = MemoryContextAllocZero(aggcontext, sizeof(LogregState));
		st->l2 = 1.0;
	}
	else
		st = (LogregState *) PG_GETARG_POINTER(0);

	if (PG_NARGS() > 3)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("l2 must not be NULL")));
		LogregSetL2(st, PG_GETARG_FLOAT8(3));
	}

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		st->skipped++;
		PG_RETURN_POINTER(st);
	}

	a = PG_GETARG_ARRAYTYPE_P(1);
	v = EcrmFloat8Array(a, "features", &d);
	if (d == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not be an empty array"),
				 errdetail("Row " INT64_FORMAT " has no features.", st->n + st->skipped + 1)));
	if (d > ECRM_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many features: %d", d),
				 errdetail("logreg_train takes at most %d features.", ECRM_MAX_FEATURES)));
	if (st->d == 0)
		st->d = d;
	else if (st->d != d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature arrays have different lengths"),
				 errdetail("The first row has %d features, row " INT64_FORMAT " has %d.",
						   st->d, st->n + st->skipped + 1, d)));

	old = MemoryContextSwitchTo(aggcontext);
	LogregReserve(st, 1);
	MemoryContextSwitchTo(old);
	memcpy(st->x + st->n * d, v, d * sizeof(double));
	st->y[st->n] = PG_GETARG_BOOL(2);
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Combine two partial states: the rows of both. */
PG_FUNCTION_INFO_V1(ecrm_logreg_train_combine);
Datum
ecrm_logreg_train_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MemoryContext old;
	LogregState *a;
	LogregState *b;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_logreg_train_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	b = (LogregState *) PG_GETARG_POINTER(1);
	if (PG_ARGISNULL(0))
	{
		a = MemoryContextAllocZero(aggcontext, sizeof(LogregState));
		a->l2 = 1.0;
	}
	else
		a = (LogregState *) PG_GETARG_POINTER(0);

	if (b->l2_set)
		LogregSetL2(a, b->l2);
	a->skipped += b->skipped;
	if (b->n == 0)
		PG_RETURN_POINTER(a);
	if (a->d == 0)
		a->d = b->d;
	else if (a->d != b->d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature arrays have different lengths"),
				 errdetail("Some rows have %d features, others %d.", a->d, b->d)));
	old = MemoryContextSwitchTo(aggcontext);
	LogregReserve(a, b->n);
	MemoryContextSwitchTo(old);
	memcpy(a->x + a->n * a->d, b->x, b->n * b->d * sizeof(double));
	memcpy(a->y + a->n, b->y, b->n * sizeof(bool));
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

/* Serialise a partial state for a parallel worker. */
PG_FUNCTION_INFO_V1(ecrm_logreg_train_serialize);
Datum
ecrm_logreg_train_serialize(PG_FUNCTION_ARGS)
{
	LogregState *st = (LogregState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->d);
	pq_sendint64(&buf, st->n);
	pq_sendint64(&buf, st->skipped);
	pq_sendfloat8(&buf, st->l2);
	pq_sendbyte(&buf, st->l2_set ? 1 : 0);
	if (st->n > 0)
	{
		pq_sendbytes(&buf, (char *) st->x, st->n * st->d * sizeof(double));
		pq_sendbytes(&buf, (char *) st->y, st->n * sizeof(bool));
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Read back a serialised partial state. */
PG_FUNCTION_INFO_V1(ecrm_logreg_train_deserialize);
Datum
ecrm_logreg_train_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcontext;
	MemoryContext old;
	StringInfoData buf;
	LogregState *st;
	int64		n;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_logreg_train_deserialize called in non-aggregate context");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	old = MemoryContextSwitchTo(aggcontext);
	st = palloc0(sizeof(LogregState));
	st->d = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	st->skipped = pq_getmsgint64(&buf);
	st->l2 = pq_getmsgfloat8(&buf);
	st->l2_set = pq_getmsgbyte(&buf) != 0;
	if (st->d < 0 || st->d > ECRM_MAX_FEATURES || n < 0 || (n > 0 && st->d == 0))
		elog(ERROR, "invalid logreg_train state");
	if (n > 0)
	{
		LogregReserve(st, n);
		memcpy(st->x, pq_getmsgbytes(&buf, n * st->d * sizeof(double)), n * st->d * sizeof(double));
		memcpy(st->y, pq_getmsgbytes(&buf, n * sizeof(bool)), n * sizeof(bool));
		st->n = n;
	}
	pq_getmsgend(&buf);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* log(1 + e^t) without overflow. */
static inline double
Softplus(double t)
{
	return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t));
}

static inline double
Sigmoid(double t)
{
	if (t >= 0)
		return 1.0 / (1.0 + exp(-t));
	else
	{
		double		e = exp(t);

		return e / (1.0 + e);
	}
}

/* The penalised objective at beta (intercept first) over standardised rows. */
static double
LogregObjective(const LogregState *st, const double *beta)
{
	int			d = st->d;
	double		f = 0.0;
	int64		i;
	int			j;

	for (i = 0; i < st->n; i++)
	{
		const double *z = st->x + i * d;
		double		eta = beta[0];

		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		for (j = 0; j < d; j++)
			eta += beta[j + 1] * z[j];
		f += Softplus(eta) - (st->y[i] ? eta : 0.0);
	}
	for (j = 1; j <= d; j++)
		f += 0.5 * st->l2 * beta[j] * beta[j];
	return f;
}

/*
 * Cholesky factorisation of the p x p symmetric matrix h (full storage) into
 * its lower triangle l; false when h is not positive definite.
 */
static bool
Cholesky(const double *h, double *l, int p)
{
	int			i,
				j,
				k;

	for (j = 0; j < p; j++)
	{
		double		s = h[j * p + j];

		for (k = 0; k < j; k++)
			s -= l[j * p + k] * l[j * p + k];
		if (!(s > 0) || isinf(s))
			return false;
		l[j * p + j] = sqrt(s);
		for (i = j + 1; i < p; i++)
		{
			double		t = h[i * p + j];

			for (k = 0; k < j; k++)
				t -= l[i * p + k] * l[j * p + k];
			l[i * p + j] = t / l[j * p + j];
		}
	}
	return true;
}

/* Solve (l l^T) x = b in place of b. */
static void
CholeskySolve(const double *l, double *b, int p)
{
	int			i,
				k;

	for (i = 0; i < p; i++)
	{
		for (k = 0; k < i; k++)
			b[i] -= l[i * p + k] * b[k];
		b[i] /= l[i * p + i];
	}
	for (i = p - 1; i >= 0; i--)
	{
		for (k = i + 1; k < p; k++)
			b[i] -= l[k * p + i] * b[k];
		b[i] /= l[i * p + i];
	}
}

/* Final: standardise, run Newton, return the model as jsonb. */
PG_FUNCTION_INFO_V1(ecrm_logreg_train_final);
Datum
ecrm_logreg_train_final(PG_FUNCTION_ARGS)
{
	LogregState *st;
	MemoryContext scratch;
	MemoryContext old;
	int			d,
				p;
	int64		i,
				positives = 0;
	int			j,
				k,
				iter;
	double	   *mean,
			   *scale,
			   *beta,
			   *beta_new,
			   *g,
			   *h,
			   *l,
			   *step,
			   *coef;
	double		f,
				f_new = 0.0,
				intercept;
	bool		converged = false;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Jsonb	   *out;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "ecrm_logreg_train_final called in non-aggregate context");
	st = PG_ARGISNULL(0) ? NULL : (LogregState *) PG_GETARG_POINTER(0);
	if (st == NULL || st->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no training rows"),
				 errdetail("logreg_train received no row with non-NULL features and label (" INT64_FORMAT " rows left out for NULLs).",
						   st ? st->skipped : 0)));
	for (i = 0; i < st->n; i++)
		positives += st->y[i] ? 1 : 0;
	if (positives == 0 || positives == st->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training data has only one class"),
				 errdetail("All " INT64_FORMAT " rows are labelled %s.", st->n, positives ? "true" : "false"),
				 errhint("Logistic regression needs examples of both outcomes.")));

	d = st->d;
	p = d + 1;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "ecrm logreg_train", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scratch);
	mean = palloc0(d * sizeof(double));
	scale = palloc0(d * sizeof(double));
	beta = palloc0(p * sizeof(double));
	beta_new = palloc0(p * sizeof(double));
	g = palloc(p * sizeof(double));
	h = palloc((Size) p * p * sizeof(double));
	l = palloc((Size) p * p * sizeof(double));
	step = palloc(p * sizeof(double));
	coef = palloc(d * sizeof(double));

	/* Standardise in place (the final function owns the state: READ_WRITE). */
	for (i = 0; i < st->n; i++)
		for (j = 0; j < d; j++)
			mean[j] += st->x[i * d + j];
	for (j = 0; j < d; j++)
		mean[j] /= st->n;
	for (i = 0; i < st->n; i++)
		for (j = 0; j < d; j++)
		{
			double		t = st->x[i * d + j] - mean[j];

			scale[j] += t * t;
		}
	for (j = 0; j < d; j++)
	{
		scale[j] = sqrt(scale[j] / st->n);
		/* a constant feature: centred to zero, its weight stays 0 (as StandardScaler) */
		if (!(scale[j] > 1e-12 * Max(1.0, fabs(mean[j]))) || isinf(scale[j]))
			scale[j] = 1.0;
	}
	for (i = 0; i < st->n; i++)
	{
		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		for (j = 0; j < d; j++)
			st->x[i * d + j] = (st->x[i * d + j] - mean[j]) / scale[j];
	}

	/* Start from the intercept-only model. */
	beta[0] = log((double) positives / (double) (st->n - positives));
	f = LogregObjective(st, beta);

	for (iter = 1; iter <= LOGREG_MAX_ITERATIONS; iter++)
	{
		double		t = 1.0,
					slope = 0.0,
					maxstep = 0.0,
					maxbeta = 0.0,
					jitter = 0.0;
		bool		accepted = false;

		memset(g, 0, p * sizeof(double));
		memset(h, 0, (Size) p * p * sizeof(double));
		for (i = 0; i < st->n; i++)
		{
			const double *z = st->x + i * d;
			double		eta = beta[0],
						pr,
						w,
						r;

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			for (j = 0; j < d; j++)
				eta += beta[j + 1] * z[j];
			pr = Sigmoid(eta);
			w = pr * (1.0 - pr);
			r = pr - (st->y[i] ? 1.0 : 0.0);
			g[0] += r;
			h[0] += w;
			for (j = 0; j < d; j++)
			{
				double		wz = w * z[j];
				double	   *row = h + (Size) (j + 1) * p + 1;

				g[j + 1] += r * z[j];
				h[j + 1] += wz;
				for (k = j; k < d; k++)
					row[k] += wz * z[k];
			}
		}
		for (j = 1; j < p; j++)
		{
			g[j] += st->l2 * beta[j];
			h[(Size) j * p + j] += st->l2;
		}
		/* mirror the upper triangle */
		for (j = 0; j < p; j++)
			for (k = j + 1; k < p; k++)
				h[(Size) k * p + j] = h[(Size) j * p + k];

		while (!Cholesky(h, l, p))
		{
			double		dmax = 0.0;

			for (j = 0; j < p; j++)
				dmax = Max(dmax, fabs(h[(Size) j * p + j]));
			jitter = jitter == 0.0 ? 1e-10 * Max(dmax, 1.0) : jitter * 100;
			if (jitter > 1e-2 * Max(dmax, 1.0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("logistic regression cannot be fitted: the features are linearly dependent"),
						 errhint("Use l2 > 0, or leave out features that repeat others.")));
			for (j = 0; j < p; j++)
				h[(Size) j * p + j] += jitter;
		}
		memcpy(step, g, p * sizeof(double));
		CholeskySolve(l, step, p);
		for (j = 0; j < p; j++)
			slope += g[j] * step[j];
		/*
		 * Near the optimum the objective can no longer rank steps (its
		 * rounding exceeds the decrease half the Newton decrement promises),
		 * but the full Newton step is exact to second order: take it.
		 */
		if (slope < 1e-10 * Max(1.0, fabs(f)))
		{
			for (j = 0; j < p; j++)
				beta[j] -= step[j];
			f = LogregObjective(st, beta);
			if (slope <= 1e-24 * Max(1.0, fabs(f)))
			{
				converged = true;
				break;
			}
			continue;
		}

		/* backtracking line search on the objective */
		while (t > 1e-10)
		{
			for (j = 0; j < p; j++)
				beta_new[j] = beta[j] - t * step[j];
			f_new = LogregObjective(st, beta_new);
			if (f_new <= f - 1e-4 * t * slope)
			{
				accepted = true;
				break;
			}
			t *= 0.5;
		}
		if (!accepted)
		{
			/*
			 * The objective cannot tell better from worse any more: we are at
			 * the optimum within its rounding.  Near the optimum the full
			 * Newton step is exact to second order, so take it.
			 */
			if (slope < 1e-6 * Max(1.0, fabs(f)))
				for (j = 0; j < p; j++)
					beta[j] -= step[j];
			converged = true;
			break;
		}
		for (j = 0; j < p; j++)
		{
			maxstep = Max(maxstep, fabs(t * step[j]));
			maxbeta = Max(maxbeta, fabs(beta_new[j]));
		}
		memcpy(beta, beta_new, p * sizeof(double));
		f = f_new;
		if (maxstep <= 1e-12 * Max(1.0, maxbeta))
		{
			converged = true;
			break;
		}
	}
	if (iter > LOGREG_MAX_ITERATIONS)
		iter = LOGREG_MAX_ITERATIONS;
	if (st->l2 == 0 && f < 1e-6 * st->n)
		ereport(WARNING,
				(errmsg("the classes are separable by the features: without regularisation the coefficients grow without bound"),
				 errhint("Use l2 > 0.")));
	else if (!converged)
		ereport(WARNING,
				(errmsg("logistic regression did not converge in %d iterations", LOGREG_MAX_ITERATIONS),
				 errhint("The classes may be separable by the features; use l2 > 0.")));

	/* Back to the original scale: b + sum w_j (x_j - m_j) / s_j. */
	intercept = beta[0];
	for (j = 0; j < d; j++)
	{
		coef[j] = beta[j + 1] / scale[j];
		intercept -= coef[j] * mean[j];
	}
	for (j = 0; j < d; j++)
		if (isnan(coef[j]) || isinf(coef[j]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("logistic regression diverged: coefficient %d is not finite", j + 1),
					 errhint("Use l2 > 0, or rescale the features.")));
	if (isnan(intercept) || isinf(intercept))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("logistic regression diverged: the intercept is not finite"),
				 errhint("Use l2 > 0, or rescale the features.")));

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	PushKeyString(&ps, "type", "logistic_regression");
	PushKeyInt(&ps, "format", LOGREG_FORMAT);
	PushKeyInt(&ps, "features", d);
	PushKeyFloat(&ps, "intercept", intercept);
	PushKeyArray(&ps, "coef", coef, d);
	PushKeyArray(&ps, "mean", mean, d);
	PushKeyArray(&ps, "scale", scale, d);
	PushKeyArray(&ps, "std_coef", beta + 1, d);
	PushKeyFloat(&ps, "baseline_logit", beta[0]);
	PushKeyFloat(&ps, "l2", st->l2);
	PushKeyInt(&ps, "rows", st->n);
	PushKeyInt(&ps, "positives", positives);
	PushKeyInt(&ps, "skipped", st->skipped);
	PushKeyInt(&ps, "iterations", iter);
	PushKeyBool(&ps, "converged", converged);
	PushKeyFloat(&ps, "objective", f);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

	MemoryContextSwitchTo(old);
	out = JsonbValueToJsonb(res);
	MemoryContextDelete(scratch);
	PG_RETURN_JSONB_P(out);
}

/* ---------------------------------------------------------------------------
 * Prediction
 * ------------------------------------------------------------------------- */

typedef struct LogregModel
{
	Size		len;			/* the argument as passed (maybe compressed or a */
	char	   *bytes;			/* TOAST pointer), to know it again without detoasting */
	int			d;
	double		intercept;
	double	   *coef;
	double	   *mean;			/* NULL when the model has none */
} LogregModel;

static double *
ReadNumberArray(JsonbContainer *root, const char *key, int *n)
{
	JsonbValue *v = EcrmJsonbKey(root, key);
	JsonbContainer *c;
	double	   *out;
	int			i;

	if (v == NULL)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model field \"%s\" must be an array of numbers", key)));
	c = v->val.binary.data;
	*n = JsonContainerSize(c);
	out = palloc(Max(*n, 1) * sizeof(double));
	for (i = 0; i < *n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);

		if (e == NULL || e->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model field \"%s\" must be an array of numbers", key),
					 errdetail("Element %d is not a number.", i + 1)));
		if (!EcrmJsonbFloat8(e, &out[i]))
			ECRM_OUT_OF_RANGE("model field \"%s\" element %d is too large", key, i + 1);
	}
	return out;
}

/*
 * The model a jsonb argument holds, read once per query and kept in fn_extra.
 * It is recognised by its bytes as passed, before detoasting: a model stored
 * in a table is compressed, and decompressing it for every row would cost more
 * than the prediction.
 */
static LogregModel *
GetModel(FunctionCallInfo fcinfo, Datum arg)
{
	LogregModel *m = (LogregModel *) fcinfo->flinfo->fn_extra;
	struct varlena *raw = (struct varlena *) DatumGetPointer(arg);
	Size		len = VARSIZE_ANY(raw);
	MemoryContext old;
	JsonbValue *v;
	Jsonb	   *jb;
	int			n,
				nm = 0;

	if (m != NULL && m->len == len && memcmp(m->bytes, raw, len) == 0)
		return m;

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (m == NULL)
		m = palloc0(sizeof(LogregModel));
	else
	{
		if (m->bytes)
			pfree(m->bytes);
		if (m->coef)
			pfree(m->coef);
		if (m->mean)
			pfree(m->mean);
		memset(m, 0, sizeof(LogregModel));
	}
	fcinfo->flinfo->fn_extra = NULL;	/* until it is complete */
	MemoryContextSwitchTo(old);
	jb = DatumGetJsonbP(arg);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

	if (!JB_ROOT_IS_OBJECT(jb) ||
		(v = EcrmJsonbKey(&jb->root, "type")) == NULL || v->type != jbvString ||
		v->val.string.len != strlen("logistic_regression") ||
		memcmp(v->val.string.val, "logistic_regression", v->val.string.len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model is not a logistic regression model"),
				 errdetail("A model is the jsonb object that ecrm.logreg_train returns, with \"type\": \"logistic_regression\".")));
	v = EcrmJsonbKey(&jb->root, "intercept");
	if (v == NULL || v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model field \"intercept\" must be a number")));
	if (!EcrmJsonbFloat8(v, &m->intercept))
		ECRM_OUT_OF_RANGE("model field \"intercept\" is too large");
	m->coef = ReadNumberArray(&jb->root, "coef", &n);
	if (m->coef == NULL || n == 0 || n > ECRM_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model field \"coef\" must be an array of 1 to %d numbers", ECRM_MAX_FEATURES)));
	m->d = n;
	m->mean = ReadNumberArray(&jb->root, "mean", &nm);
	if (m->mean != NULL && nm != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model fields \"coef\" and \"mean\" have different lengths (%d and %d)", n, nm)));
	m->bytes = palloc(len);
	memcpy(m->bytes, raw, len);
	m->len = len;
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = m;
	return m;
}

static double *
ModelFeatures(LogregModel *m, ArrayType *a)
{
	int			n;
	double	   *x = EcrmFloat8Array(a, "features", &n);

	if (n != m->d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model expects %d features, not %d", m->d, n),
				 errhint("Build the features with the specification the model was trained on.")));
	return x;
}

/* Probability of the positive class for one feature array. */
PG_FUNCTION_INFO_V1(ecrm_logreg_predict);
Datum
ecrm_logreg_predict(PG_FUNCTION_ARGS)
{
	LogregModel *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = ModelFeatures(m, PG_GETARG_ARRAYTYPE_P(1));
	double		eta = m->intercept;
	int			j;

	for (j = 0; j < m->d; j++)
		eta += m->coef[j] * x[j];
	if (isnan(eta))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("prediction overflowed"),
				 errdetail("The features are too large for the model's coefficients.")));
	PG_RETURN_FLOAT8(Sigmoid(eta));
}

/*
 * What each feature adds to the log-odds compared with an average training
 * row: coef_j * (x_j - mean_j).  With the model's baseline_logit they add up
 * to the logit of the prediction.
 */
PG_FUNCTION_INFO_V1(ecrm_logreg_contributions);
Datum
ecrm_logreg_contributions(PG_FUNCTION_ARGS)
{
	LogregModel *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = ModelFeatures(m, PG_GETARG_ARRAYTYPE_P(1));
	Datum	   *out;
	int			j;

	if (m->mean == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model has no \"mean\" field, so contributions cannot be computed")));
	out = palloc(m->d * sizeof(Datum));
	for (j = 0; j < m->d; j++)
	{
		double		c = m->coef[j] * (x[j] - m->mean[j]);

		if (isnan(c) || isinf(c))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("contribution of feature %d overflowed", j + 1)));
		out[j] = Float8GetDatum(c);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(out, m->d, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
