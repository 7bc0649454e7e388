/*
 * scoring.c — time decay for engagement scores.
 *
 * An event worth v points that happened at time t is worth, as of time T,
 * v * 2^(-(T - t) / half_life).  Events after T have not happened yet as of T
 * and count nothing.  decayed_sum adds that up per group; its state is a
 * plain float8, so float8pl combines partial sums and the aggregate runs in
 * parallel and pushes down to Citus shards.
 */
#include "postgres.h"

#include <math.h>

#include "ecrm.h"
#include "datatype/timestamp.h"
#include "utils/float.h"
#include "utils/timestamp.h"

/*
 * Seconds in an interval, counted as extract(epoch from interval) does
 * (a month is 30 days, a year 365.25 days).
 */
static double
IntervalSeconds(const Interval *iv)
{
	double		s = (double) iv->time / USECS_PER_SEC;

	s += (double) iv->day * SECS_PER_DAY;
	s += (double) (iv->month / MONTHS_PER_YEAR) * DAYS_PER_YEAR * SECS_PER_DAY;
	s += (double) (iv->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * SECS_PER_DAY;
	return s;
}

/* The half-life in seconds; it must be positive. */
static double
HalfLifeSeconds(const Interval *half_life)
{
	double		s = IntervalSeconds(half_life);

	if (!(s > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("half-life must be positive"),
				 errdetail("The half-life given is %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(half_life))))));
	return s;
}

/* as_of must be a finite time. */
static void
CheckAsOf(TimestampTz as_of)
{
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite time, not %s",
						TIMESTAMP_IS_NOBEGIN(as_of) ? "-infinity" : "infinity")));
}

/*
 * Weight of an event at "at" as of "as_of": 1 when it just happened, halving
 * every half-life; 0 for an event after as_of or at -infinity.
 */
static double
DecayWeight(TimestampTz at, TimestampTz as_of, double half_life_secs)
{
	double		age;

	if (TIMESTAMP_IS_NOBEGIN(at))
		return 0.0;
	if (TIMESTAMP_IS_NOEND(at) || at > as_of)
		return 0.0;
	/* in double: the difference of two extreme timestamps overflows int64 */
	age = ((double) as_of - (double) at) / USECS_PER_SEC;
	return exp2(-age / half_life_secs);
}

/* Weight of an event at a time, as of another time, with a half-life. */
PG_FUNCTION_INFO_V1(ecrm_decay_weight);
Datum
ecrm_decay_weight(PG_FUNCTION_ARGS)
{
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(0);
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(1);
	Interval   *half_life = PG_GETARG_INTERVAL_P(2);
	double		hl = HalfLifeSeconds(half_life);

	CheckAsOf(as_of);
	PG_RETURN_FLOAT8(DecayWeight(at, as_of, hl));
}

/*
 * Transition function of decayed_sum(value, at, as_of, half_life).  A row
 * with any NULL argument is left out, as sum() leaves out NULLs.  The state
 * is a plain float8, so this is a pure function callable anywhere.
 */
PG_FUNCTION_INFO_V1(ecrm_decayed_sum_trans);
Datum
ecrm_decayed_sum_trans(PG_FUNCTION_ARGS)
{
	double		value;
	double		w;
	double		sum;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}

	value = PG_GETARG_FLOAT8(1);
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decayed_sum value must be a finite number, not %s",
						isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity"))));
	CheckAsOf(PG_GETARG_TIMESTAMPTZ(3));
	w = DecayWeight(PG_GETARG_TIMESTAMPTZ(2), PG_GETARG_TIMESTAMPTZ(3),
					HalfLifeSeconds(PG_GETARG_INTERVAL_P(4)));

	if (!PG_ARGISNULL(0))
		EcrmCheckFinite(PG_GETARG_FLOAT8(0), "decayed_sum state");
	sum = (PG_ARGISNULL(0) ? 0.0 : PG_GETARG_FLOAT8(0)) + value * w;
	if (isinf(sum))
		float_overflow_error();
	PG_RETURN_FLOAT8(sum);
}
