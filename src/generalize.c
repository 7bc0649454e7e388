/*
 * generalize.c — masking by generalisation and noise: dates and times cut to
 * a coarser unit, numbers turned into the range they fall in, bounded noise,
 * and IP addresses cut to their network.
 *
 * Noise and averaging: ecrm.mask_noise(value, ratio) draws fresh noise on
 * every call, so whoever can read the masked value many times (the same row
 * in many queries) can average the noise away.  The keyed form,
 * ecrm.mask_noise(value, ratio, seed, key), draws the same noise for the
 * same seed (a row's id) every time, so repeating a query teaches nothing.
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

/* The unit argument of a date or time function, checked against the allowed list. */
static text *
UnitArg(FunctionCallInfo fcinfo, int argno, const char *fn, const char *const *allowed, const char *hint)
{
	text	   *t = PG_GETARG_TEXT_PP(argno);
	char	   *unit;

	if (VARSIZE_ANY_EXHDR(t) > 20)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit of %s is too long", fn),
				 errhint("Use one of: %s.", hint)));
	unit = text_to_cstring(t);
	for (int i = 0; allowed[i] != NULL; i++)
		if (strcmp(unit, allowed[i]) == 0)
			return t;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown unit \"%s\" for %s", unit, fn),
			 errhint("Use one of: %s.", hint)));
	return NULL;				/* keep compiler quiet */
}

static const char *const date_units[] = {"month", "quarter", "year", "decade", NULL};
static const char *const time_units[] = {"hour", "day", "month", "quarter", "year", "decade", NULL};

/* A date cut to the first day of its month, quarter, year or decade. */
PG_FUNCTION_INFO_V1(ecrm_mask_date);
Datum
ecrm_mask_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);
	text	   *unit = UnitArg(fcinfo, 1, "mask_date", date_units, "month, quarter, year, decade");
	Datum		ts;

	if (DATE_NOT_FINITE(d))
		PG_RETURN_DATEADT(d);
	ts = DirectFunctionCall1(date_timestamp, DateADTGetDatum(d));
	ts = DirectFunctionCall2(timestamp_trunc, PointerGetDatum(unit), ts);
	return DirectFunctionCall1(timestamp_date, ts);
}

/* A timestamp cut to its hour, day, month, quarter, year or decade. */
PG_FUNCTION_INFO_V1(ecrm_mask_timestamp);
Datum
ecrm_mask_timestamp(PG_FUNCTION_ARGS)
{
	Timestamp	t = PG_GETARG_TIMESTAMP(0);
	text	   *unit = UnitArg(fcinfo, 1, "mask_time", time_units, "hour, day, month, quarter, year, decade");

	return DirectFunctionCall2(timestamp_trunc, PointerGetDatum(unit), TimestampGetDatum(t));
}

/* A timestamp with time zone cut to its hour, day, ... in the session's time zone. */
PG_FUNCTION_INFO_V1(ecrm_mask_timestamptz);
Datum
ecrm_mask_timestamptz(PG_FUNCTION_ARGS)
{
	TimestampTz t = PG_GETARG_TIMESTAMPTZ(0);
	text	   *unit = UnitArg(fcinfo, 1, "mask_time", time_units, "hour, day, month, quarter, year, decade");

	return DirectFunctionCall2(timestamptz_trunc, PointerGetDatum(unit), TimestampTzGetDatum(t));
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
	int32		v = PG_GETARG_INT32(0);
	int32		step = PG_GETARG_INT32(1);

	if (step <= 0)
		CheckStep(false, psprintf("%d", step));
	return IntRange(v, step, INT4RANGEOID, PG_INT32_MIN, PG_INT32_MAX);
}

/* The int8range a value falls in, in steps of step. */
PG_FUNCTION_INFO_V1(ecrm_mask_range_int8);
Datum
ecrm_mask_range_int8(PG_FUNCTION_ARGS)
{
	int64		v = PG_GETARG_INT64(0);
	int64		step = PG_GETARG_INT64(1);

	if (step <= 0)
		CheckStep(false, psprintf(INT64_FORMAT, step));
	return IntRange(v, step, INT8RANGEOID, PG_INT64_MIN, PG_INT64_MAX);
}

/* The numrange a value falls in, in steps of step; NULL for NaN and infinities. */
PG_FUNCTION_INFO_V1(ecrm_mask_range_numeric);
Datum
ecrm_mask_range_numeric(PG_FUNCTION_ARGS)
{
	Numeric		v = PG_GETARG_NUMERIC(0);
	Numeric		step = PG_GETARG_NUMERIC(1);
	Datum		zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	Datum		q,
				r,
				lower,
				upper;

	if (numeric_is_nan(step) || numeric_is_inf(step) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(step), zero)) <= 0)
		CheckStep(false, DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(step))));
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
	float8		v = PG_GETARG_FLOAT8(0);
	float8		ratio = PG_GETARG_FLOAT8(1);
	float8		u;

	CheckRatio(ratio);
	if (isnan(v) || isinf(v))
		PG_RETURN_FLOAT8(v);
	u = 2.0 * pg_prng_double(&pg_global_prng_state) - 1.0;
	PG_RETURN_FLOAT8(v * (1.0 + ratio * u));
}

/*
 * value * (1 + ratio * u) with u drawn from HMAC(key, seed): the same seed
 * always gets the same noise, so the noise cannot be averaged away by
 * reading the value again; without the key it cannot be subtracted.
 */
PG_FUNCTION_INFO_V1(ecrm_mask_noise_keyed);
Datum
ecrm_mask_noise_keyed(PG_FUNCTION_ARGS)
{
	float8		v,
				ratio;
	text	   *seed;
	const bytea *key;
	uint8		mac[ECRM_HMAC_LEN];
	uint64		x = 0;
	float8		u;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ratio of mask_noise must not be null")));
	ratio = PG_GETARG_FLOAT8(1);
	CheckRatio(ratio);
	key = EcrmPseudonymKey(fcinfo, 3);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_FLOAT8(0);
	if (isnan(v) || isinf(v))
		PG_RETURN_FLOAT8(v);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("seed of mask_noise must not be null"),
				 errhint("Use a value that identifies the row, such as its id.")));
	seed = PG_GETARG_TEXT_PP(2);
	EcrmCheckFieldLength(seed, "seed");
	EcrmHmac(key, "noise", "", 0, VARDATA_ANY(seed), VARSIZE_ANY_EXHDR(seed), mac);
	for (int i = 0; i < 8; i++)
		x = (x << 8) | mac[i];
	u = 2.0 * ((double) (x >> 11) * (1.0 / 9007199254740992.0)) - 1.0;
	PG_RETURN_FLOAT8(v * (1.0 + ratio * u));
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
CheckPrefixes(int32 v4, int32 v6)
{
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
	inet	   *ip = PG_GETARG_INET_PP(0);
	int32		v4 = PG_GETARG_INT32(1);
	int32		v6 = PG_GETARG_INT32(2);
	inet	   *dst;
	int			bits;

	CheckPrefixes(v4, v6);
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
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		v4 = PG_GETARG_INT32(1);
	int32		v6 = PG_GETARG_INT32(2);
	unsigned char addr[16];
	int			family;
	char		buf[64];
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	CheckPrefixes(v4, v6);
	EcrmCheckFieldLength(t, "IP address");
	EcrmTrim(&s, &len);
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
