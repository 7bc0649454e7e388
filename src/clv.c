/*
 * clv.c — customer lifetime value: the BG/NBD purchase model (Fader, Hardie
 * and Lee 2005, "Counting your customers the easy way") and the Gamma-Gamma
 * spend model (Fader and Hardie 2013), fitted by maximum likelihood inside
 * the database.
 *
 * The fitting aggregates collect one row per customer — (frequency, recency,
 * T) for BG/NBD, (frequency, monetary) for Gamma-Gamma, in the summary form
 * the `lifetimes` package uses — merge identical rows into weights, and
 * maximise the log-likelihood with Nelder-Mead over the logarithms of the
 * parameters (so every parameter stays positive), restarting from the best
 * point until a restart no longer improves it.  The prediction functions are
 * the closed forms of the papers; the conditional expectation of BG/NBD needs
 * the Gauss hypergeometric function 2F1, computed here by its series after
 * Euler's transformation, which turns the large parameters of that formula
 * into small ones so the series converges fast.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "ecrm.h"
#include "access/htup_details.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#define CLV_MAX_PARAMS		4
#define NM_MAX_EVALS		20000
#define NM_MAX_RESTARTS		20
#define HYP2F1_MAX_TERMS	10000000

/* Rows collected by a fitting aggregate: ncols doubles each. */
typedef struct ClvState
{
	int			ncols;			/* 3: (x, tx, T) for BG/NBD; 2: (x, m) for Gamma-Gamma */
	int64		n;
	int64		cap;
	int64		skipped;		/* rows left out (NULL, or no repeat purchase for Gamma-Gamma) */
	double	   *rows;
} ClvState;

/* Deduplicated data handed to the objective: ncols values and a weight. */
typedef struct ClvData
{
	int			ncols;
	int64		n;
	double	   *rows;			/* n * ncols */
	double	   *w;
} ClvData;

typedef double (*ClvObjective) (const double *u, const ClvData *d);

/* ---------------------------------------------------------------------------
 * Checks shared by every entry point
 * ---------------------------------------------------------------------------
 */
static inline void
CheckPositiveParam(double v, const char *name)
{
	if (!(v > 0) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model parameter %s must be a positive finite number, not %g", name, v)));
}

/* A customer's summary: x repeat purchases, the last at tx, observed for T. */
static inline void
CheckSummary(double x, double tx, double T)
{
	if (!(x >= 0) || isinf(x) || x != floor(x) || x > 1e9)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number of repeat purchases from 0 to 1e9, not %g", x)));
	if (!(T >= 0) || isinf(T) || T > 1e9)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("T (time since the first purchase) must be between 0 and 1e9, not %g", T)));
	if (!(tx >= 0) || tx > T)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency must be between 0 and T (%g), not %g", T, tx)));
	if (x == 0 && tx != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency must be 0 for a customer without repeat purchases, not %g", tx),
				 errdetail("Recency is the time from the first to the last purchase.")));
}

static inline void
CheckMonetary(double x, double m)
{
	if (!(x >= 0) || isinf(x) || x != floor(x) || x > 1e9)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number of repeat purchases from 0 to 1e9, not %g", x)));
	if (!(m >= 0) || isinf(m))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monetary value must be a non-negative finite number, not %g", m)));
}

/* log(exp(p) + exp(q)) without overflow */
static inline double
LogAddExp(double p, double q)
{
	double		hi = Max(p, q);

	if (isinf(hi) && hi < 0)
		return hi;
	return hi + log(exp(p - hi) + exp(q - hi));
}

/* ---------------------------------------------------------------------------
 * Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1
 * ---------------------------------------------------------------------------
 */

/* The plain series; NaN when it does not converge within the term budget. */
static double
Hyp2f1Series(double a, double b, double c, double z)
{
	double		sum = 1.0;
	double		term = 1.0;
	int64		k;

	for (k = 0; k < HYP2F1_MAX_TERMS; k++)
	{
		if ((k & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (c + k == 0)
			return NAN;
		term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z;
		sum += term;
		if (term == 0 || fabs(term) <= 1e-16 * fabs(sum))
			return isfinite(sum) ? sum : NAN;
		if (!isfinite(sum))
			return NAN;
	}
	return NAN;
}

/*
 * log 2F1(a, b; c; z) for 0 <= z < 1, with Euler's transformation
 * 2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z) when it makes
 * the parameters smaller; NaN when the value is not positive or the series
 * does not converge.
 */
static double
Hyp2f1Log(double a, double b, double c, double z)
{
	double		f;

	if (z == 0)
		return 0.0;
	if (fabs(c - a) + fabs(c - b) < fabs(a) + fabs(b))
	{
		f = Hyp2f1Series(c - a, c - b, c, z);
		if (!(f > 0))
			return NAN;
		return (c - a - b) * log1p(-z) + log(f);
	}
	f = Hyp2f1Series(a, b, c, z);
	if (!(f > 0))
		return NAN;
	return log(f);
}

/* Gauss hypergeometric function 2F1(a, b; c; z) for -1 < z < 1 */
PG_FUNCTION_INFO_V1(ecrm_hyp2f1);
Datum
ecrm_hyp2f1(PG_FUNCTION_ARGS)
{
	double		a = PG_GETARG_FLOAT8(0);
	double		b = PG_GETARG_FLOAT8(1);
	double		c = PG_GETARG_FLOAT8(2);
	double		z = PG_GETARG_FLOAT8(3);
	double		f;

	if (!isfinite(a) || !isfinite(b) || !isfinite(c))
		ECRM_BAD_ARG("hyp2f1 parameters must be finite");
	if (!(z > -1 && z < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hyp2f1 is computed for -1 < z < 1, not z = %g", z)));
	if (c <= 0 && c == floor(c))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hyp2f1 is undefined for c = %g (zero or a negative integer)", c)));
	if (z > 0 && fabs(c - a) + fabs(c - b) < fabs(a) + fabs(b))
	{
		f = Hyp2f1Series(c - a, c - b, c, z);
		if (isfinite(f))
			f *= pow(1 - z, c - a - b);
	}
	else
		f = Hyp2f1Series(a, b, c, z);
	if (!isfinite(f))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hyp2f1(%g, %g; %g; %g) does not converge to a finite value", a, b, c, z)));
	PG_RETURN_FLOAT8(f);
}

/* ---------------------------------------------------------------------------
 * BG/NBD
 * ---------------------------------------------------------------------------
 */

/* Log-likelihood of one customer's (x, tx, T). */
static inline double
BgnbdLogLik(double r, double alpha, double a, double b, double x, double tx, double T)
{
	double		a1 = lgamma(r + x) - lgamma(r) + r * log(alpha);
	double		a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
	double		a3 = -(r + x) * log(alpha + T);

	if (x > 0)
	{
		double		a4 = log(a) - log(b + x - 1) - (r + x) * log(alpha + tx);

		return a1 + a2 + LogAddExp(a3, a4);
	}
	return a1 + a2 + a3;
}

/* log of the odds term  (a / (b + x - 1)) ((alpha + T) / (alpha + tx))^(r + x), or -inf when x = 0 */
static inline double
BgnbdLogOdds(double r, double alpha, double a, double b, double x, double tx, double T)
{
	if (x == 0)
		return -INFINITY;
	return log(a) - log(b + x - 1) + (r + x) * (log(alpha + T) - log(alpha + tx));
}

static double
BgnbdPAlive(double r, double alpha, double a, double b, double x, double tx, double T)
{
	double		lo = BgnbdLogOdds(r, alpha, a, b, x, tx, T);

	/* 1 / (1 + exp(lo)) */
	if (lo > 0)
		return exp(-lo) / (1 + exp(-lo));
	return 1 / (1 + exp(lo));
}

/* Expected purchases in (T, T + t] of a customer with (x, tx, T). */
static double
BgnbdExpected(double r, double alpha, double a, double b, double x, double tx, double T, double t)
{
	double		z,
				logf,
				head,
				lo,
				denom;

	if (t == 0)
		return 0.0;
	/* the formula has a removable singularity at a = 1 */
	if (fabs(a - 1) < 1e-7)
		a = 1 + 1e-7;
	z = t / (alpha + T + t);
	logf = Hyp2f1Log(r + x, b + x, a + b + x - 1, z);
	if (isnan(logf))
		return NAN;
	/* ((alpha + T) / (alpha + T + t))^(r + x) 2F1(...) = exp((r + x) log(1 - z) + log 2F1) */
	head = (a + b + x - 1) / (a - 1) * -expm1((r + x) * log1p(-z) + logf);
	lo = BgnbdLogOdds(r, alpha, a, b, x, tx, T);
	denom = (lo > 700) ? INFINITY : 1 + exp(lo);
	return head / denom;
}

static double
BgnbdNegLogLik(const double *u, const ClvData *d)
{
	double		r = exp(u[0]),
				alpha = exp(u[1]),
				a = exp(u[2]),
				b = exp(u[3]);
	double		ll = 0;
	int64		i;

	if (!isfinite(r) || !isfinite(alpha) || !isfinite(a) || !isfinite(b) ||
		r < 1e-10 || alpha < 1e-10 || a < 1e-10 || b < 1e-10)
		return HUGE_VAL;
	for (i = 0; i < d->n; i++)
	{
		const double *row = d->rows + i * 3;

		ll += d->w[i] * BgnbdLogLik(r, alpha, a, b, row[0], row[1], row[2]);
	}
	return isfinite(ll) ? -ll : HUGE_VAL;
}

/* ---------------------------------------------------------------------------
 * Gamma-Gamma
 * ---------------------------------------------------------------------------
 */
static inline double
GammaGammaLogLik(double p, double q, double v, double x, double m)
{
	return lgamma(p * x + q) - lgamma(p * x) - lgamma(q) + q * log(v)
		+ (p * x - 1) * log(m) + (p * x) * log(x) - (p * x + q) * log(x * m + v);
}

static double
GammaGammaNegLogLik(const double *u, const ClvData *d)
{
	double		p = exp(u[0]),
				q = exp(u[1]),
				v = exp(u[2]);
	double		ll = 0;
	int64		i;

	if (!isfinite(p) || !isfinite(q) || !isfinite(v) || p < 1e-10 || q < 1e-10 || v < 1e-10)
		return HUGE_VAL;
	for (i = 0; i < d->n; i++)
	{
		const double *row = d->rows + i * 2;

		ll += d->w[i] * GammaGammaLogLik(p, q, v, row[0], row[1]);
	}
	return isfinite(ll) ? -ll : HUGE_VAL;
}

/* ---------------------------------------------------------------------------
 * Nelder-Mead over the log-parameters
 * ---------------------------------------------------------------------------
 */
typedef struct NmResult
{
	double		u[CLV_MAX_PARAMS];
	double		f;
	int			evals;
	bool		converged;
} NmResult;

/*
 * One Nelder-Mead run from u0 with initial steps of `step` (standard
 * coefficients: reflection 1, expansion 2, contraction 1/2, shrink 1/2).
 * Stops when the simplex is smaller than xtol in every coordinate and its
 * values differ by less than ftol (relative), or after max_evals.
 */
static void
NelderMead(ClvObjective fn, const ClvData *d, int dim, const double *u0, double step,
		   int max_evals, NmResult *res)
{
	double		s[CLV_MAX_PARAMS + 1][CLV_MAX_PARAMS];
	double		fs[CLV_MAX_PARAMS + 1];
	double		xc[CLV_MAX_PARAMS],
				xr[CLV_MAX_PARAMS],
				xe[CLV_MAX_PARAMS],
				xk[CLV_MAX_PARAMS];
	int			evals = 0;
	int			i,
				j;
	bool		converged = false;

	for (i = 0; i <= dim; i++)
	{
		for (j = 0; j < dim; j++)
			s[i][j] = u0[j] + ((i == j + 1) ? step : 0);
		fs[i] = fn(s[i], d);
		evals++;
	}

	while (evals < max_evals)
	{
		int			lo = 0,
					hi = 0,
					nh = 0;
		double		size = 0,
					fr,
					fe,
					fk;

		CHECK_FOR_INTERRUPTS();
		/* order: best (lo), worst (hi), second worst (nh) */
		for (i = 1; i <= dim; i++)
		{
			if (fs[i] < fs[lo])
				lo = i;
			if (fs[i] > fs[hi])
				hi = i;
		}
		nh = (hi == 0) ? 1 : 0;
		for (i = 0; i <= dim; i++)
			if (i != hi && fs[i] > fs[nh])
				nh = i;

		for (i = 0; i <= dim; i++)
			for (j = 0; j < dim; j++)
				size = Max(size, fabs(s[i][j] - s[lo][j]));
		if (size < 1e-9 && isfinite(fs[hi]) &&
			fabs(fs[hi] - fs[lo]) <= 1e-12 * (fabs(fs[lo]) + 1e-12))
		{
			converged = true;
			break;
		}

		for (j = 0; j < dim; j++)
		{
			xc[j] = 0;
			for (i = 0; i <= dim; i++)
				if (i != hi)
					xc[j] += s[i][j];
			xc[j] /= dim;
			xr[j] = xc[j] + (xc[j] - s[hi][j]);
		}
		fr = fn(xr, d);
		evals++;
		if (fr < fs[lo])
		{
			for (j = 0; j < dim; j++)
				xe[j] = xc[j] + 2 * (xc[j] - s[hi][j]);
			fe = fn(xe, d);
			evals++;
			if (fe < fr)
			{
				memcpy(s[hi], xe, sizeof(double) * dim);
				fs[hi] = fe;
			}
			else
			{
				memcpy(s[hi], xr, sizeof(double) * dim);
				fs[hi] = fr;
			}
			continue;
		}
		if (fr < fs[nh])
		{
			memcpy(s[hi], xr, sizeof(double) * dim);
			fs[hi] = fr;
			continue;
		}
		/* contraction: outside when the reflection beat the worst, else inside */
		for (j = 0; j < dim; j++)
			xk[j] = (fr < fs[hi]) ? xc[j] + 0.5 * (xr[j] - xc[j])
				: xc[j] + 0.5 * (s[hi][j] - xc[j]);
		fk = fn(xk, d);
		evals++;
		if (fk < Min(fr, fs[hi]))
		{
			memcpy(s[hi], xk, sizeof(double) * dim);
			fs[hi] = fk;
			continue;
		}
		/* shrink towards the best */
		for (i = 0; i <= dim; i++)
		{
			if (i == lo)
				continue;
			for (j = 0; j < dim; j++)
				s[i][j] = s[lo][j] + 0.5 * (s[i][j] - s[lo][j]);
			fs[i] = fn(s[i], d);
			evals++;
		}
	}

	j = 0;
	for (i = 1; i <= dim; i++)
		if (fs[i] < fs[j])
			j = i;
	memcpy(res->u, s[j], sizeof(double) * dim);
	res->f = fs[j];
	res->evals = evals;
	res->converged = converged;
}

/*
 * Minimise fn from each starting point, then restart from the best point with
 * a smaller simplex until a restart gains nothing (the usual cure for a
 * simplex that collapsed early).
 */
static void
Minimise(ClvObjective fn, const ClvData *d, int dim, const double *starts, int nstarts,
		 NmResult *best)
{
	NmResult	cur;
	int			k,
				total = 0;

	best->f = HUGE_VAL;
	best->converged = false;
	for (k = 0; k < nstarts; k++)
	{
		NelderMead(fn, d, dim, starts + k * dim, 0.7, NM_MAX_EVALS, &cur);
		total += cur.evals;
		if (k == 0 || cur.f < best->f)
			*best = cur;
	}
	for (k = 0; k < NM_MAX_RESTARTS; k++)
	{
		double		before = best->f;

		NelderMead(fn, d, dim, best->u, 0.1, NM_MAX_EVALS, &cur);
		total += cur.evals;
		if (cur.f <= best->f)
		{
			*best = cur;
		}
		if (!(before - best->f > 1e-9 * (fabs(before) + 1e-9)))
			break;
	}
	best->evals = total;
}

/* ---------------------------------------------------------------------------
 * Aggregate state: collect, combine, serialise
 * ---------------------------------------------------------------------------
 */
static ClvState *
ClvStateNew(MemoryContext agg, int ncols)
{
	ClvState   *st = MemoryContextAllocZero(agg, sizeof(ClvState));

	st->ncols = ncols;
	st->cap = 1024;
	st->rows = MemoryContextAlloc(agg, sizeof(double) * ncols * st->cap);
	return st;
}

static void
ClvStateReserve(ClvState *st, int64 extra)
{
	int64		need = st->n + extra;

	if (need <= st->cap)
		return;
	while (st->cap < need)
		st->cap *= 2;
	if ((Size) st->cap > MaxAllocHugeSize / (sizeof(double) * st->ncols))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many customers for one model fit (%lld)", (long long) need)));
	st->rows = repalloc_huge(st->rows, mul_size(sizeof(double) * st->ncols, (Size) st->cap));
}

static MemoryContext
ClvAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext agg;

	if (!AggCheckCallContext(fcinfo, &agg))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return agg;
}

/* BG/NBD fit, transition: collect (frequency, recency, T) */
PG_FUNCTION_INFO_V1(ecrm_bgnbd_trans);
Datum
ecrm_bgnbd_trans(PG_FUNCTION_ARGS)
{
	MemoryContext agg = ClvAggContext(fcinfo, "bgnbd_fit");
	ClvState   *st = PG_ARGISNULL(0) ? ClvStateNew(agg, 3) : (ClvState *) PG_GETARG_POINTER(0);
	double		x,
				tx,
				T;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
	{
		st->skipped++;
		PG_RETURN_POINTER(st);
	}
	x = PG_GETARG_FLOAT8(1);
	tx = PG_GETARG_FLOAT8(2);
	T = PG_GETARG_FLOAT8(3);
	CheckSummary(x, tx, T);
	ClvStateReserve(st, 1);
	st->rows[st->n * 3] = x;
	st->rows[st->n * 3 + 1] = tx;
	st->rows[st->n * 3 + 2] = T;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Gamma-Gamma fit, transition: collect (frequency, monetary) of repeat buyers */
PG_FUNCTION_INFO_V1(ecrm_gamma_gamma_trans);
Datum
ecrm_gamma_gamma_trans(PG_FUNCTION_ARGS)
{
	MemoryContext agg = ClvAggContext(fcinfo, "gamma_gamma_fit");
	ClvState   *st = PG_ARGISNULL(0) ? ClvStateNew(agg, 2) : (ClvState *) PG_GETARG_POINTER(0);
	double		x,
				m;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		st->skipped++;
		PG_RETURN_POINTER(st);
	}
	x = PG_GETARG_FLOAT8(1);
	m = PG_GETARG_FLOAT8(2);
	CheckMonetary(x, m);
	/* the model is about the spend of repeat purchases: one-time buyers tell nothing */
	if (x == 0 || m == 0)
	{
		st->skipped++;
		PG_RETURN_POINTER(st);
	}
	ClvStateReserve(st, 1);
	st->rows[st->n * 2] = x;
	st->rows[st->n * 2 + 1] = m;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* combine two partial states of a fitting aggregate */
PG_FUNCTION_INFO_V1(ecrm_clv_combine);
Datum
ecrm_clv_combine(PG_FUNCTION_ARGS)
{
	MemoryContext agg = ClvAggContext(fcinfo, "clv combine");
	ClvState   *a = PG_ARGISNULL(0) ? NULL : (ClvState *) PG_GETARG_POINTER(0);
	ClvState   *b = PG_ARGISNULL(1) ? NULL : (ClvState *) PG_GETARG_POINTER(1);
	MemoryContext old;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	old = MemoryContextSwitchTo(agg);
	if (a == NULL)
	{
		a = ClvStateNew(agg, b->ncols);
	}
	ClvStateReserve(a, b->n);
	memcpy(a->rows + a->n * a->ncols, b->rows, sizeof(double) * b->ncols * b->n);
	a->n += b->n;
	a->skipped += b->skipped;
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(a);
}

/* serialise a fitting aggregate's state (for parallel aggregation) */
PG_FUNCTION_INFO_V1(ecrm_clv_serialize);
Datum
ecrm_clv_serialize(PG_FUNCTION_ARGS)
{
	ClvState   *st = (ClvState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	int64		i;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, 1);		/* format version */
	pq_sendint32(&buf, st->ncols);
	pq_sendint64(&buf, st->n);
	pq_sendint64(&buf, st->skipped);
	for (i = 0; i < st->n * st->ncols; i++)
		pq_sendfloat8(&buf, st->rows[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* deserialise a fitting aggregate's state */
PG_FUNCTION_INFO_V1(ecrm_clv_deserialize);
Datum
ecrm_clv_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext agg = ClvAggContext(fcinfo, "clv deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	ClvState   *st;
	int			ncols;
	int64		n,
				i;

	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (pq_getmsgbyte(&buf) != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("unknown format of a CLV aggregate state")));
	ncols = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	if ((ncols != 2 && ncols != 3) || n < 0 ||
		n > (int64) ((buf.len - buf.cursor) / (sizeof(double) * ncols)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
						errmsg("corrupt CLV aggregate state")));
	st = ClvStateNew(agg, ncols);
	st->skipped = pq_getmsgint64(&buf);
	ClvStateReserve(st, n);
	for (i = 0; i < n * ncols; i++)
		st->rows[i] = pq_getmsgfloat8(&buf);
	st->n = n;
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

static int	CompareNcols;

static int
CompareRows(const void *pa, const void *pb)
{
	const double *a = pa,
			   *b = pb;
	int			j;

	for (j = 0; j < CompareNcols; j++)
	{
		if (a[j] < b[j])
			return -1;
		if (a[j] > b[j])
			return 1;
	}
	return 0;
}

/* Sort the rows and merge identical ones into weights. */
static void
ClvDedup(ClvState *st, ClvData *d)
{
	int			nc = st->ncols;
	int64		i,
				k = -1;

	CompareNcols = nc;
	qsort(st->rows, st->n, sizeof(double) * nc, CompareRows);
	d->ncols = nc;
	d->rows = palloc_extended(mul_size(sizeof(double) * nc, Max(st->n, 1)), MCXT_ALLOC_HUGE);
	d->w = palloc_extended(mul_size(sizeof(double), Max(st->n, 1)), MCXT_ALLOC_HUGE);
	for (i = 0; i < st->n; i++)
	{
		if (k >= 0 && memcmp(d->rows + k * nc, st->rows + i * nc, sizeof(double) * nc) == 0)
			d->w[k] += 1;
		else
		{
			k++;
			memcpy(d->rows + k * nc, st->rows + i * nc, sizeof(double) * nc);
			d->w[k] = 1;
		}
	}
	d->n = k + 1;
}

static Datum
ClvResult(FunctionCallInfo fcinfo, Datum *values, int nvalues)
{
	TupleDesc	tupdesc;
	bool		nulls[16] = {false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != nvalues)
		elog(ERROR, "return type has %d columns, expected %d", tupdesc->natts, nvalues);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/*
 * Fit a model to the rows of a state: merge identical rows, minimise from the
 * given starts (dim log-parameters each; in every start but the first, the
 * parameter scale_param is an offset from the log of the mean of data column
 * scale_col, so the start follows the data's time or money unit), and put the
 * parameters, log-likelihood, customers, evaluations and convergence into
 * values[].
 */
static void
ClvFit(ClvState *st, ClvObjective fn, int dim, double *starts, int nstarts, int scale_param,
	   int scale_col, const char *model, Datum *values)
{
	ClvData		d;
	NmResult	best;
	MemoryContext scratch,
				old;
	double		mean = 0;
	int64		i;
	int			k;

	scratch = AllocSetContextCreate(CurrentMemoryContext, "clv fit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scratch);
	ClvDedup(st, &d);
	for (i = 0; i < d.n; i++)
		mean += d.w[i] * d.rows[i * d.ncols + scale_col];
	mean = Max(mean / st->n, 1e-6);
	for (k = 1; k < nstarts; k++)
		starts[k * dim + scale_param] += log(mean);
	Minimise(fn, &d, dim, starts, nstarts, &best);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);

	if (!isfinite(best.f))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the %s model cannot be fitted to these %lld customers", model, (long long) st->n),
				 errhint("Check that the input columns are in one time unit and of sensible size.")));
	for (k = 0; k < dim; k++)
		values[k] = Float8GetDatum(exp(best.u[k]));
	values[dim] = Float8GetDatum(-best.f);
	values[dim + 1] = Int64GetDatum(st->n);
	values[dim + 2] = Int32GetDatum(best.evals);
	values[dim + 3] = BoolGetDatum(best.converged);
}

/* BG/NBD fit, final: maximum-likelihood (r, alpha, a, b) */
PG_FUNCTION_INFO_V1(ecrm_bgnbd_final);
Datum
ecrm_bgnbd_final(PG_FUNCTION_ARGS)
{
	ClvState   *st;
	Datum		values[8];

	/* log-parameters to start from: all ones (as lifetimes does); alpha near mean T / 4 and mean T */
	double		starts[3 * 4] = {
		0, 0, 0, 0,
		-0.6931, -1.3863, -0.2231, 0.9163,
		0.6931, 0, -1.2040, 0
	};

	ClvAggContext(fcinfo, "bgnbd_fit");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (ClvState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		PG_RETURN_NULL();
	ClvFit(st, BgnbdNegLogLik, 4, starts, 3, 1, 2, "BG/NBD", values);
	PG_RETURN_DATUM(ClvResult(fcinfo, values, 8));
}

/* Gamma-Gamma fit, final: maximum-likelihood (p, q, v) */
PG_FUNCTION_INFO_V1(ecrm_gamma_gamma_final);
Datum
ecrm_gamma_gamma_final(PG_FUNCTION_ARGS)
{
	ClvState   *st;
	Datum		values[7];

	/* log-parameters to start from: all ones; v near the mean spend and 4 times it */
	double		starts[3 * 3] = {
		0, 0, 0,
		1.6094, 1.0986, 0,
		0, 1.6094, 1.3863
	};

	ClvAggContext(fcinfo, "gamma_gamma_fit");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (ClvState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		PG_RETURN_NULL();
	ClvFit(st, GammaGammaNegLogLik, 3, starts, 3, 2, 1, "Gamma-Gamma", values);
	PG_RETURN_DATUM(ClvResult(fcinfo, values, 7));
}

/* ---------------------------------------------------------------------------
 * Per-customer functions
 * ---------------------------------------------------------------------------
 */
static void
GetBgnbdArgs(FunctionCallInfo fcinfo, double *r, double *alpha, double *a, double *b,
			 double *x, double *tx, double *T)
{
	*r = PG_GETARG_FLOAT8(0);
	*alpha = PG_GETARG_FLOAT8(1);
	*a = PG_GETARG_FLOAT8(2);
	*b = PG_GETARG_FLOAT8(3);
	*x = PG_GETARG_FLOAT8(4);
	*tx = PG_GETARG_FLOAT8(5);
	*T = PG_GETARG_FLOAT8(6);
	CheckPositiveParam(*r, "r");
	CheckPositiveParam(*alpha, "alpha");
	CheckPositiveParam(*a, "a");
	CheckPositiveParam(*b, "b");
	CheckSummary(*x, *tx, *T);
}

/* BG/NBD log-likelihood of one customer's (frequency, recency, T) */
PG_FUNCTION_INFO_V1(ecrm_bgnbd_log_likelihood);
Datum
ecrm_bgnbd_log_likelihood(PG_FUNCTION_ARGS)
{
	double		r, alpha, a, b, x, tx, T;

	GetBgnbdArgs(fcinfo, &r, &alpha, &a, &b, &x, &tx, &T);
	PG_RETURN_FLOAT8(BgnbdLogLik(r, alpha, a, b, x, tx, T));
}

/* BG/NBD probability that a customer is still alive */
PG_FUNCTION_INFO_V1(ecrm_bgnbd_p_alive);
Datum
ecrm_bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	double		r, alpha, a, b, x, tx, T;

	GetBgnbdArgs(fcinfo, &r, &alpha, &a, &b, &x, &tx, &T);
	PG_RETURN_FLOAT8(BgnbdPAlive(r, alpha, a, b, x, tx, T));
}

/* BG/NBD expected purchases of a customer in the next t time units */
PG_FUNCTION_INFO_V1(ecrm_bgnbd_expected_purchases);
Datum
ecrm_bgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	double		r, alpha, a, b, x, tx, T;
	double		t = PG_GETARG_FLOAT8(7);
	double		e;

	GetBgnbdArgs(fcinfo, &r, &alpha, &a, &b, &x, &tx, &T);
	if (!(t >= 0) || isinf(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the horizon t must be a non-negative finite number, not %g", t)));
	e = BgnbdExpected(r, alpha, a, b, x, tx, T, t);
	if (isnan(e))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected purchases cannot be computed for these parameters")));
	PG_RETURN_FLOAT8(e);
}

/* Gamma-Gamma expected spend per purchase given x repeat purchases of mean m */
PG_FUNCTION_INFO_V1(ecrm_gamma_gamma_expected_value);
Datum
ecrm_gamma_gamma_expected_value(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(0);
	double		q = PG_GETARG_FLOAT8(1);
	double		v = PG_GETARG_FLOAT8(2);
	double		x = PG_GETARG_FLOAT8(3);
	double		m = PG_GETARG_FLOAT8(4);
	double		den;

	CheckPositiveParam(p, "p");
	CheckPositiveParam(q, "q");
	CheckPositiveParam(v, "v");
	CheckMonetary(x, m);
	den = p * x + q - 1;
	/* with q <= 1 the population mean spend is infinite: no estimate without repeat purchases */
	if (den <= 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(p * (v + x * m) / den);
}

/*
 * Discounted value of a customer's purchases over the next `months` (of 30
 * days), as lifetimes' customer_lifetime_value computes it: expected purchases
 * of each month times the expected spend, discounted monthly.
 */
PG_FUNCTION_INFO_V1(ecrm_clv_predict);
Datum
ecrm_clv_predict(PG_FUNCTION_ARGS)
{
	double		r, alpha, a, b, x, tx, T;
	double		spend = PG_GETARG_FLOAT8(7);
	int32		months = PG_GETARG_INT32(8);
	double		discount = PG_GETARG_FLOAT8(9);
	double		unit_days = PG_GETARG_FLOAT8(10);
	double		clv = 0,
				prev = 0;
	int			i;

	GetBgnbdArgs(fcinfo, &r, &alpha, &a, &b, &x, &tx, &T);
	if (!(spend >= 0) || isinf(spend))
		ECRM_BAD_ARG("expected spend must be a non-negative finite number, not %g", spend);
	if (months < 0 || months > 1200)
		ECRM_BAD_ARG("months must be between 0 and 1200, not %d", months);
	if (!(discount >= 0 && discount < 10))
		ECRM_BAD_ARG("monthly discount rate must be between 0 and 10, not %g", discount);
	if (!(unit_days > 0 && unit_days <= 366))
		ECRM_BAD_ARG("time unit must be between 0 and 366 days, not %g", unit_days);
	for (i = 1; i <= months; i++)
	{
		double		cum = BgnbdExpected(r, alpha, a, b, x, tx, T, i * 30.0 / unit_days);

		if (isnan(cum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("expected purchases cannot be computed for these parameters")));
		clv += spend * (cum - prev) / pow(1 + discount, i);
		prev = cum;
	}
	PG_RETURN_FLOAT8(clv);
}
