/*
 * generalize.c — masking by generalisation and noise: dates and times cut to
 * a coarser unit, numbers turned into the range they fall in, bounded noise,
 * and IP addresses cut to their network.
 *
 * Noise and averaging: ecrm.mask_noise(value, ratio) draws fresh noise on
 * every call, so whoever can read the masked value many times (the same row
 * in many queries) can average the noise away.  The keyed form,
 * ecrm.mask_noise(value, ratio, seed, context), draws the same noise for the
 * same seed (a row's id) every time, so repeating a query teaches nothing;
 * averaging over many rows still converges to the true mean, which is the
 * point of noise (aggregates stay useful) and its limit (small groups leak).
 */
#include "postgres.h"

#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "ecrm.h"
#include "pii.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/inet.h"
#include "utils/numeric.h"
#include "utils/rangetypes.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

static const char *const date_units[] = {"month", "quarter", "year", "decade", NULL};
static const char *const time_units[] = {"hour", "day", "month", "quarter", "year", "decade", NULL};

/* The unit argument (argument 1) of a date or time function, checked. */
static Datum
UnitArg(FunctionCallInfo fcinfo, const char *fn, const char *const *allowed, const char *hint)
{
	int			i = EcrmOptionIndex(fcinfo, 1, fn, "unit", allowed, hint);

	return PointerGetDatum(cstring_to_text(allowed[i]));
}

/* A date cut to the first day of its month, quarter, year or decade. */
PG_FUNCTION_INFO_V1(ecrm_mask_date);
Datum
ecrm_mask_date(PG_FUNCTION_ARGS)
{
	Datum		unit = UnitArg(fcinfo, "mask_date", date_units, "month, quarter, year, decade");
	DateADT		d;
	Datum		ts;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	d = PG_GETARG_DATEADT(0);
	if (DATE_NOT_FINITE(d))
		PG_RETURN_DATEADT(d);
	ts = DirectFunctionCall1(date_timestamp, DateADTGetDatum(d));
	ts = DirectFunctionCall2(timestamp_trunc, unit, ts);
	return DirectFunctionCall1(timestamp_date, ts);
}

/* A timestamp cut to its hour, day, month, quarter, year or decade. */
PG_FUNCTION_INFO_V1(ecrm_mask_timestamp);
Datum
ecrm_mask_timestamp(PG_FUNCTION_ARGS)
{
	Datum		unit = UnitArg(fcinfo, "mask_time", time_units, "hour, day, month, quarter, year, decade");

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return DirectFunctionCall2(timestamp_trunc, unit, PG_GETARG_DATUM(0));
}

/* A timestamp with time zone cut to its hour, day, ... in the session's time zone. */
PG_FUNCTION_INFO_V1(ecrm_mask_timestamptz);
Datum
ecrm_mask_timestamptz(PG_FUNCTION_ARGS)
{
	Datum		unit = UnitArg(fcinfo, "mask_time", time_units, "hour, day, month, quarter, year, decade");

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return DirectFunctionCall2(timestamptz_trunc, unit, PG_GETARG_DATUM(0));
}

/* [lower, upper) of the given range type; an unbounded side when infinite. */
static Datum
MakeRange(Oid rangetype, Datum lower, bool lower_inf, Datum upper, bool upper_inf)
{
	TypeCacheEntry *typcache = lookup_type_cache(rangetype, TYPECACHE_RANGE_INFO);
	RangeBound	lb,
				ub;

	lb.val = lower;
	lb.infinite = lower_inf;
	lb.inclusive = !lower_inf;
	lb.lower = true;
	ub.val = upper;
	ub.infinite = upper_inf;
	ub.inclusive = false;
	ub.lower = false;
	return RangeTypePGetDatum(make_range(typcache, &lb, &ub, false));
}

static void
CheckStep(bool positive, const char *what)
{
	if (!positive)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step of mask_range must be positive, not %s", what)));
}

/*
 * The range [k * step, (k + 1) * step) that an integer falls in, computed in
 * 128 bits; a side beyond the type's limits becomes unbounded.
 */
static Datum
IntRange(int64 v, int64 step, Oid rangetype, int64 min, int64 max)
{
	int128		q = v / step;
	int128		lower,
				upper;
	bool		lower_inf,
				upper_inf;

	if (v % step != 0 && v < 0)
		q--;
	lower = q * step;
	upper = lower + step;
	lower_inf = lower < min;
	upper_inf = upper > max;
	if (rangetype == INT4RANGEOID)
		return MakeRange(rangetype, Int32GetDatum(lower_inf ? 0 : (int32) lower), lower_inf,
						 Int32GetDatum(upper_inf ? 0 : (int32) upper), upper_inf);
	return MakeRange(rangetype, Int64GetDatum(lower_inf ? 0 : (int64) lower), lower_inf,
					 Int64GetDatum(upper_inf ? 0 : (int64) upper), upper_inf);
}

/* The int4range a value falls in, in steps of step. */
PG_FUNCTION_INFO_V1(ecrm_mask_range_int4);
Datum
ecrm_mask_range_int4(PG_FUNCTION_ARGS)
{
	int32		step;

	ECRM_ARG_NOT_NULL(1, "mask_range", "step");
	step = PG_GETARG_INT32(1);
	if (step <= 0)
		CheckStep(false, psprintf("%d", step));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return IntRange(PG_GETARG_INT32(0), step, INT4RANGEOID, PG_INT32_MIN, PG_INT32_MAX);
}

/* The int8range a value falls in, in steps of step. */
PG_FUNCTION_INFO_V1(ecrm_mask_range_int8);
Datum
ecrm_mask_range_int8(PG_FUNCTION_ARGS)
{
	int64		step;

	ECRM_ARG_NOT_NULL(1, "mask_range", "step");
	step = PG_GETARG_INT64(1);
	if (step <= 0)
		CheckStep(false, psprintf(INT64_FORMAT, step));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return IntRange(PG_GETARG_INT64(0), step, INT8RANGEOID, PG_INT64_MIN, PG_INT64_MAX);
}

/* The numrange a value falls in, in steps of step; NULL for NaN and infinities. */
PG_FUNCTION_INFO_V1(ecrm_mask_range_numeric);
Datum
ecrm_mask_range_numeric(PG_FUNCTION_ARGS)
{
	Numeric		v;
	Numeric		step;
	Datum		zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	Datum		q,
				r,
				lower,
				upper;

	ECRM_ARG_NOT_NULL(1, "mask_range", "step");
	step = PG_GETARG_NUMERIC(1);
	if (numeric_is_nan(step) || numeric_is_inf(step) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(step), zero)) <= 0)
		CheckStep(false, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(step))));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_NUMERIC(0);
	if (numeric_is_nan(v) || numeric_is_inf(v))
		PG_RETURN_NULL();
	/* exact floor division: truncate, then step down for a negative remainder */
	q = DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(v), NumericGetDatum(step));
	r = DirectFunctionCall2(numeric_mod, NumericGetDatum(v), NumericGetDatum(step));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, r, zero)) < 0)
		q = DirectFunctionCall2(numeric_sub, q, DirectFunctionCall1(int4_numeric, Int32GetDatum(1)));
	lower = DirectFunctionCall2(numeric_mul, q, NumericGetDatum(step));
	upper = DirectFunctionCall2(numeric_add, lower, NumericGetDatum(step));
	return MakeRange(NUMRANGEOID, lower, false, upper, false);
}

static void
CheckRatio(float8 ratio)
{
	if (isnan(ratio) || ratio < 0 || ratio > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ratio of mask_noise must be between 0 and 1, not %g", ratio)));
}

/*
 * value * (1 + ratio * u) with u uniform in [-1, 1), fresh on every call.
 * Volatile: see the note on averaging at the top of the file.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_noise);
Datum
ecrm_mask_noise(PG_FUNCTION_ARGS)
{
	float8		v;
	float8		ratio;
	float8		u;

	ECRM_ARG_NOT_NULL(1, "mask_noise", "ratio");
	ratio = PG_GETARG_FLOAT8(1);
	CheckRatio(ratio);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_FLOAT8(0);
	if (isnan(v) || isinf(v))
		PG_RETURN_FLOAT8(v);
	u = 2.0 * pg_prng_double(&pg_global_prng_state) - 1.0;
	PG_RETURN_FLOAT8(v * (1.0 + ratio * u));
}

/*
 * u in [-1, 1) drawn from HMAC(key, context, seed): the same seed always gets
 * the same noise, so reading a value again teaches nothing, and without the
 * key the noise cannot be subtracted.
 */
static float8
KeyedUniform(FunctionCallInfo fcinfo, int seedarg, int ctxarg)
{
	text	   *seed;
	text	   *ctx = NULL;
	uint8		mac[ECRM_HMAC_LEN];
	uint64		x = 0;

	if (PG_ARGISNULL(seedarg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("seed of mask_noise must not be null"),
				 errhint("Use a value that identifies the row, such as its id.")));
	seed = PG_GETARG_TEXT_PP(seedarg);
	if (!PG_ARGISNULL(ctxarg))
	{
		ctx = PG_GETARG_TEXT_PP(ctxarg);
		if (VARSIZE_ANY_EXHDR(ctx) > 1000)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("context of mask_noise is too long (%d bytes)", (int) VARSIZE_ANY_EXHDR(ctx)),
					 errdetail("The limit is 1000 bytes.")));
	}
	EcrmHmac("noise", ctx ? VARDATA_ANY(ctx) : "", ctx ? VARSIZE_ANY_EXHDR(ctx) : 0,
			 VARDATA_ANY(seed), VARSIZE_ANY_EXHDR(seed), mac);
	for (int i = 0; i < 8; i++)
		x = (x << 8) | mac[i];
	return 2.0 * ((double) (x >> 11) * (1.0 / 9007199254740992.0)) - 1.0;
}

/* The ratio argument of the keyed forms, checked before anything else. */
static float8
KeyedRatio(FunctionCallInfo fcinfo)
{
	float8		ratio;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ratio of mask_noise must not be null")));
	ratio = PG_GETARG_FLOAT8(1);
	CheckRatio(ratio);
	EcrmCheckPseudonymKey();
	return ratio;
}

/* value * (1 + ratio * u), u keyed by seed (see KeyedUniform). */
PG_FUNCTION_INFO_V1(ecrm_mask_noise_keyed);
Datum
ecrm_mask_noise_keyed(PG_FUNCTION_ARGS)
{
	float8		ratio = KeyedRatio(fcinfo);
	float8		v;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_FLOAT8(0);
	if (isnan(v) || isinf(v))
		PG_RETURN_FLOAT8(v);
	PG_RETURN_FLOAT8(v * (1.0 + ratio * KeyedUniform(fcinfo, 2, 3)));
}

/* The numeric form: the noisy value rounded to the scale of the value given. */
PG_FUNCTION_INFO_V1(ecrm_mask_noise_keyed_numeric);
Datum
ecrm_mask_noise_keyed_numeric(PG_FUNCTION_ARGS)
{
	float8		ratio = KeyedRatio(fcinfo);
	Numeric		v;
	Datum		factor,
				scaled;
	int32		scale;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_NUMERIC(0);
	if (numeric_is_nan(v) || numeric_is_inf(v))
		PG_RETURN_NUMERIC(v);
	factor = DirectFunctionCall1(float8_numeric, Float8GetDatum(1.0 + ratio * KeyedUniform(fcinfo, 2, 3)));
	scaled = DirectFunctionCall2(numeric_mul, NumericGetDatum(v), factor);
	scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(v)));
	return DirectFunctionCall2(numeric_round, scaled, Int32GetDatum(scale));
}

/* Zero the bits of addr (family's size) after the first bits. */
static void
ZeroHostBits(unsigned char *addr, int nbytes, int bits)
{
	for (int i = 0; i < nbytes; i++)
	{
		int			keep = bits - i * 8;

		if (keep <= 0)
			addr[i] = 0;
		else if (keep < 8)
			addr[i] &= (unsigned char) (0xFF << (8 - keep));
	}
}

static void
PrefixArgs(FunctionCallInfo fcinfo, int32 *v4p, int32 *v6p)
{
	int32		v4,
				v6;

	ECRM_ARG_NOT_NULL(1, "mask_ip", "v4_prefix");
	ECRM_ARG_NOT_NULL(2, "mask_ip", "v6_prefix");
	v4 = *v4p = PG_GETARG_INT32(1);
	v6 = *v6p = PG_GETARG_INT32(2);
	if (v4 < 0 || v4 > 32 || v6 < 0 || v6 > 128)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prefix lengths of mask_ip must be 0 to 32 for IPv4 and 0 to 128 for IPv6"),
				 errdetail("The IPv4 prefix is %d and the IPv6 prefix is %d.", v4, v6)));
}

/* An inet cut to its network: IPv4 to v4_prefix bits (24), IPv6 to v6_prefix bits (48). */
PG_FUNCTION_INFO_V1(ecrm_mask_ip);
Datum
ecrm_mask_ip(PG_FUNCTION_ARGS)
{
	inet	   *ip;
	int32		v4,
				v6;
	inet	   *dst;
	int			bits;

	PrefixArgs(fcinfo, &v4, &v6);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	ip = PG_GETARG_INET_PP(0);
	dst = (inet *) palloc0(sizeof(inet));
	ip_family(dst) = ip_family(ip);
	bits = Min(ip_family(ip) == PGSQL_AF_INET ? v4 : v6, ip_bits(ip));
	ip_bits(dst) = bits;
	memcpy(ip_addr(dst), ip_addr(ip), ip_addrsize(ip));
	ZeroHostBits(ip_addr(dst), ip_addrsize(dst), bits);
	SET_INET_VARSIZE(dst);
	PG_RETURN_INET_P(dst);
}

/* An IP address written as text, cut to its network; "***" when it is not one. */
PG_FUNCTION_INFO_V1(ecrm_mask_ip_text);
Datum
ecrm_mask_ip_text(PG_FUNCTION_ARGS)
{
	int32		v4,
				v6;
	unsigned char addr[16];
	int			family;
	char		buf[64];
	const char *s;
	int			len;

	PrefixArgs(fcinfo, &v4, &v6);
	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (!EcrmParseIp(s, len, &family, addr))
		PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
	if (family == PGSQL_AF_INET)
	{
		ZeroHostBits(addr, 4, v4);
		pg_inet_net_ntop(PGSQL_AF_INET, addr, 32, buf, sizeof(buf));
	}
	else
	{
		ZeroHostBits(addr, 16, v6);
		pg_inet_net_ntop(PGSQL_AF_INET6, addr, 128, buf, sizeof(buf));
	}
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}
