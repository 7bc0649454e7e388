/*
 * fellegi_sunter.c — match weights and probabilities of the Fellegi–Sunter
 * model, and its training by expectation-maximisation.
 *
 * A pair of records is compared field by field; each comparison puts the
 * pair at a level (gamma, see similarity.c).  With m = P(level | match) and
 * u = P(level | non-match), the pair's match weight is
 *
 *     log2(lambda / (1 - lambda)) + sum over comparisons of log2(m / u)
 *
 * where lambda is the probability that two records drawn at random match,
 * and its match probability is 1 / (1 + 2^-weight).  A missing value
 * (gamma = -1) adds nothing: it is no evidence either way.
 *
 * EM (fs_em) fits m, u and lambda to the counts of each distinct comparison
 * vector among candidate pairs (there are few distinct vectors, so training
 * over millions of pairs is a GROUP BY and a few milliseconds here).  As in
 * Splink, u is usually estimated beforehand from random pairs and held
 * fixed, and comparisons a blocking rule forces to agree are left out of
 * that rule's session (given as -1).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "funcapi.h"
#include "matching.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Probabilities are kept away from 0 and 1 so that weights stay finite. */
#define PROB_FLOOR 1e-9

typedef struct Matrix
{
	int			rows;
	int			cols;
	double	   *v;				/* rows * cols, NaN where there is no level */
} Matrix;

static void
CheckProbability(double p, const char *what)
{
	if (!(p > 0.0 && p < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a probability strictly between 0 and 1, not %g", what, p)));
}

/* A float8 matrix (comparisons x levels); NULL entries mark levels a comparison does not have. */
static Matrix
GetMatrix(ArrayType *a, const char *what)
{
	Matrix		m;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(a) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a two-dimensional array (comparisons x levels)", what)));
	m.rows = ARR_DIMS(a)[0];
	m.cols = ARR_DIMS(a)[1];
	if (m.rows > ECRM_MAX_COMPARISONS || m.cols > ECRM_MAX_LEVELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d x %d entries, at most %d comparisons of %d levels", what,
						m.rows, m.cols, ECRM_MAX_COMPARISONS, ECRM_MAX_LEVELS)));
	deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	m.v = palloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
		m.v[i] = nulls[i] ? NAN : DatumGetFloat8(elems[i]);
	return m;
}

/* gamma vector of a pair: -1 or a level below the comparison's level count */
static int16 *
GetGamma(ArrayType *a, int *n)
{
	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gamma must be a one-dimensional array of comparison levels without nulls")));
	*n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	return (int16 *) ECRM_ARR_DATA(a);
}

static double
Weight(int16 *g, int n, const Matrix *w, double prior)
{
	double		total = log2(prior / (1.0 - prior));

	if (n != w->rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gamma has %d comparisons but the weights have %d", n, w->rows)));
	for (int i = 0; i < n; i++)
	{
		double		x;

		if (g[i] == -1)
			continue;
		if (g[i] < -1 || g[i] >= w->cols || isnan(x = w->v[i * w->cols + g[i]]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("comparison %d has no level %d", i + 1, g[i])));
		if (isinf(x))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the weight of level %d of comparison %d must be finite, not %s", g[i], i + 1,
							x > 0 ? "Infinity" : "-Infinity"),
					 errdetail("ecrm refuses NaN and infinities where they have no meaning; NaN marks a level a comparison does not have.")));
		total += x;
	}
	return total;
}

static ArrayType *
GetArrayArg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return PG_GETARG_ARRAYTYPE_P(argno);
}

/*
 * Level weights parsed once per query when they are a constant (fn_extra),
 * else once per call.
 */
static const Matrix *
GetWeights(FunctionCallInfo fcinfo, int argno, Matrix *local)
{
	Matrix	   *w;

	if (fcinfo->flinfo && fcinfo->flinfo->fn_extra && get_fn_expr_arg_stable(fcinfo->flinfo, argno))
		return fcinfo->flinfo->fn_extra;
	if (fcinfo->flinfo && get_fn_expr_arg_stable(fcinfo->flinfo, argno))
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		w = palloc(sizeof(Matrix));
		*w = GetMatrix(GetArrayArg(fcinfo, argno, "level_weights"), "level_weights");
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = w;
		return w;
	}
	*local = GetMatrix(GetArrayArg(fcinfo, argno, "level_weights"), "level_weights");
	return local;
}

/* Match weight (log2 Bayes factor plus prior odds) of a comparison vector. */
PG_FUNCTION_INFO_V1(ecrm_match_weight);
Datum
ecrm_match_weight(PG_FUNCTION_ARGS)
{
	ArrayType  *ga = GetArrayArg(fcinfo, 0, "gamma");
	Matrix		local;
	const Matrix *w = GetWeights(fcinfo, 1, &local);
	double		prior = PG_ARGISNULL(2) ? NAN : PG_GETARG_FLOAT8(2);
	int			n;
	int16	   *g = GetGamma(ga, &n);

	CheckProbability(prior, "prior");
	PG_RETURN_FLOAT8(Weight(g, n, w, prior));
}

/* Match probability of a match weight: 1 / (1 + 2^-weight). */
PG_FUNCTION_INFO_V1(ecrm_match_probability);
Datum
ecrm_match_probability(PG_FUNCTION_ARGS)
{
	float8		w = PG_GETARG_FLOAT8(0);

	if (isnan(w))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("match weight must be a number, not NaN")));
	PG_RETURN_FLOAT8(1.0 / (1.0 + exp2(-w)));
}

/* Log2 Bayes factor of each level, log2(m / u), as a level_weights matrix. */
PG_FUNCTION_INFO_V1(ecrm_level_weights);
Datum
ecrm_level_weights(PG_FUNCTION_ARGS)
{
	ArrayType  *ma = GetArrayArg(fcinfo, 0, "m");
	ArrayType  *ua = GetArrayArg(fcinfo, 1, "u");
	Matrix		m = GetMatrix(ma, "m");
	Matrix		u = GetMatrix(ua, "u");
	int			n = m.rows * m.cols;
	Datum	   *out;
	bool	   *nulls;
	int			dims[2] = {m.rows, m.cols};
	int			lbs[2] = {1, 1};

	if (m.rows != u.rows || m.cols != u.cols)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("m is %d x %d but u is %d x %d", m.rows, m.cols, u.rows, u.cols)));
	out = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		nulls[i] = isnan(m.v[i]) || isnan(u.v[i]);
		if (isnan(m.v[i]) != isnan(u.v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("m and u disagree on the levels of comparison %d", i / m.cols + 1)));
		if (!nulls[i])
		{
			if (!(m.v[i] >= 0.0 && m.v[i] <= 1.0) || !(u.v[i] >= 0.0 && u.v[i] <= 1.0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("m and u must be probabilities between 0 and 1"),
						 errdetail("Comparison %d, level %d has m = %g and u = %g.",
								   i / m.cols + 1, i % m.cols, m.v[i], u.v[i])));
			out[i] = Float8GetDatum(log2(Max(m.v[i], PROB_FLOOR) / Max(u.v[i], PROB_FLOOR)));
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, nulls, 2, dims, lbs, FLOAT8OID, 8,
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static ArrayType *
MatrixToArray(const Matrix *m)
{
	int			n = m->rows * m->cols;
	Datum	   *out = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);
	int			dims[2] = {m->rows, m->cols};
	int			lbs[2] = {1, 1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = isnan(m->v[i]);
		if (!nulls[i])
			out[i] = Float8GetDatum(m->v[i]);
	}
	return construct_md_array(out, nulls, 2, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE);
}

/*
 * Make each row of a probability matrix the expected counts of its levels,
 * normalised, with half a pair added to every level: a level no pair of a
 * class reached gets a small probability rather than zero, so one unseen
 * near-miss cannot outweigh every other field.
 */
#define PSEUDO_COUNT 0.5

static void
NormalizeRows(Matrix *m, const double *acc, const bool *seen)
{
	for (int i = 0; i < m->rows; i++)
	{
		double		sum = 0.0;
		int			nl = 0;

		if (!seen[i])
			continue;
		for (int l = 0; l < m->cols; l++)
			if (!isnan(m->v[i * m->cols + l]))
			{
				sum += acc[i * m->cols + l];
				nl++;
			}
		if (sum <= 0.0)
			continue;
		for (int l = 0; l < m->cols; l++)
		{
			double	   *x = &m->v[i * m->cols + l];

			if (!isnan(*x))
				*x = Max((acc[i * m->cols + l] + PSEUDO_COUNT) / (sum + PSEUDO_COUNT * nl), PROB_FLOOR);
		}
	}
}

/*
 * Fit m (and u unless fix_u) and lambda to counted comparison vectors by EM.
 * Returns (m, u, lambda, iterations, converged, log_likelihood).
 */
PG_FUNCTION_INFO_V1(ecrm_fs_em);
Datum
ecrm_fs_em(PG_FUNCTION_ARGS)
{
	ArrayType  *ga = GetArrayArg(fcinfo, 0, "patterns");
	ArrayType  *ca = GetArrayArg(fcinfo, 1, "counts");
	Matrix		m = GetMatrix(GetArrayArg(fcinfo, 2, "m"), "m");
	Matrix		u = GetMatrix(GetArrayArg(fcinfo, 3, "u"), "u");
	double		lambda = PG_ARGISNULL(4) ? NAN : PG_GETARG_FLOAT8(4);
	bool		fix_u = PG_ARGISNULL(5) ? true : PG_GETARG_BOOL(5);
	int			max_iter = PG_ARGISNULL(6) ? 100 : PG_GETARG_INT32(6);
	double		tol = PG_ARGISNULL(7) ? 1e-6 : PG_GETARG_FLOAT8(7);
	int			np,
				nc,
				ncounts;
	int16	   *g;
	Datum	   *cd;
	bool	   *cnulls;
	double	   *counts;
	double	   *am,
			   *au;
	bool	   *seen;
	int			iter;
	bool		converged = false;
	double		loglik = 0.0;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	CheckProbability(lambda, "lambda");
	if (max_iter < 1 || max_iter > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_iterations must be between 1 and 100000, not %d", max_iter)));
	if (!(tol > 0.0 && tol < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be between 0 and 1, not %g", tol)));
	if (m.rows != u.rows || m.cols != u.cols)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("m is %d x %d but u is %d x %d", m.rows, m.cols, u.rows, u.cols)));
	for (int i = 0; i < m.rows * m.cols; i++)
	{
		if (isnan(m.v[i]) != isnan(u.v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("m and u disagree on the levels of comparison %d", i / m.cols + 1)));
		if (!isnan(m.v[i]) && (!(m.v[i] > 0.0 && m.v[i] < 1.0) || !(u.v[i] > 0.0 && u.v[i] < 1.0)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("m and u must be probabilities strictly between 0 and 1"),
					 errdetail("Comparison %d, level %d has m = %g and u = %g.",
							   i / m.cols + 1, i % m.cols, m.v[i], u.v[i])));
	}

	if (ARR_NDIM(ga) != 2 || ARR_HASNULL(ga))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patterns must be a two-dimensional smallint array (patterns x comparisons) without nulls")));
	np = ARR_DIMS(ga)[0];
	nc = ARR_DIMS(ga)[1];
	if (nc != m.rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("patterns have %d comparisons but m has %d", nc, m.rows)));
	g = (int16 *) ECRM_ARR_DATA(ga);
	for (int i = 0; i < np * nc; i++)
		if (g[i] < -1 || g[i] >= m.cols || (g[i] >= 0 && isnan(m.v[(i % nc) * m.cols + g[i]])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("comparison %d has no level %d", i % nc + 1, g[i]),
					 errdetail("Found in pattern %d.", i / nc + 1)));
	deconstruct_array(ca, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &cd, &cnulls, &ncounts);
	if (ncounts != np)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("there are %d patterns but %d counts", np, ncounts)));
	counts = palloc(sizeof(double) * Max(np, 1));
	for (int p = 0; p < np; p++)
	{
		counts[p] = cnulls[p] ? NAN : DatumGetFloat8(cd[p]);
		if (!(counts[p] >= 0.0) || isinf(counts[p]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("counts must be non-negative finite numbers"),
					 errdetail("Count %d is %g.", p + 1, counts[p])));
	}

	am = palloc(sizeof(double) * m.rows * m.cols);
	au = palloc(sizeof(double) * m.rows * m.cols);
	seen = palloc(sizeof(bool) * m.rows);
	for (iter = 1; iter <= max_iter && np > 0; iter++)
	{
		double		sum_post = 0.0,
					total = 0.0,
					delta = 0.0;
		double		old_lambda = lambda;

		CHECK_FOR_INTERRUPTS();
		memset(am, 0, sizeof(double) * m.rows * m.cols);
		memset(au, 0, sizeof(double) * m.rows * m.cols);
		memset(seen, 0, sizeof(bool) * m.rows);
		loglik = 0.0;
		for (int p = 0; p < np; p++)
		{
			int16	   *gp = g + (size_t) p * nc;
			double		lm = log(lambda),
						lu = log(1.0 - lambda),
						post,
						c = counts[p];

			for (int i = 0; i < nc; i++)
				if (gp[i] >= 0)
				{
					lm += log(m.v[i * m.cols + gp[i]]);
					lu += log(u.v[i * m.cols + gp[i]]);
				}
			post = 1.0 / (1.0 + exp(lu - lm));
			/* log(exp(lm) + exp(lu)) without overflow */
			loglik += c * (Max(lm, lu) + log1p(exp(-fabs(lm - lu))));
			sum_post += c * post;
			total += c;
			for (int i = 0; i < nc; i++)
				if (gp[i] >= 0)
				{
					am[i * m.cols + gp[i]] += c * post;
					au[i * m.cols + gp[i]] += c * (1.0 - post);
					seen[i] = true;
				}
		}
		if (total <= 0.0)
			break;
		{
			double	   *oldm = palloc(sizeof(double) * m.rows * m.cols);

			memcpy(oldm, m.v, sizeof(double) * m.rows * m.cols);
			NormalizeRows(&m, am, seen);
			for (int i = 0; i < m.rows * m.cols; i++)
				if (!isnan(m.v[i]))
					delta = Max(delta, fabs(m.v[i] - oldm[i]));
			if (!fix_u)
			{
				memcpy(oldm, u.v, sizeof(double) * m.rows * m.cols);
				NormalizeRows(&u, au, seen);
				for (int i = 0; i < m.rows * m.cols; i++)
					if (!isnan(u.v[i]))
						delta = Max(delta, fabs(u.v[i] - oldm[i]));
			}
			pfree(oldm);
		}
		lambda = Min(Max(sum_post / total, PROB_FLOOR), 1.0 - PROB_FLOOR);
		delta = Max(delta, fabs(lambda - old_lambda));
		if (delta < tol)
		{
			converged = true;
			break;
		}
	}
	if (iter > max_iter)
		iter = max_iter;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "fs_em must return a record");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = PointerGetDatum(MatrixToArray(&m));
	values[1] = PointerGetDatum(MatrixToArray(&u));
	values[2] = Float8GetDatum(lambda);
	values[3] = Int32GetDatum(np > 0 ? iter : 0);
	values[4] = BoolGetDatum(converged);
	values[5] = Float8GetDatum(loglik);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
