/*
 * scoring.h — helpers shared by the predictive-scoring files (logreg.c,
 * features.c, evaluate.c): reading numbers and keys out of jsonb models and
 * specifications, writing exact float8 values and whole models into jsonb.
 */
#ifndef ECRM_SCORING_H
#define ECRM_SCORING_H

#include <math.h>

#include "common/shortest_dec.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Most features a model or a feature specification may have. */
#define ECRM_MAX_FEATURES	1000

/* The value under a key of a jsonb object, or NULL. */
static inline JsonbValue *
EcrmJsonbKey(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* A jsonb number as a float8; false when it does not fit (the caller names it in an error). */
static inline bool
EcrmJsonbFloat8(const JsonbValue *v, double *out)
{
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v->val.numeric)));
	return !isnan(*out) && !isinf(*out);
}

/* The error for a number too large for float8. */
#define ECRM_OUT_OF_RANGE(...) \
	ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), \
					errmsg(__VA_ARGS__), errdetail("It is out of range for double precision.")))

/*
 * A float8 as a numeric with the shortest decimal that reads back as the same
 * float8 (float8_numeric keeps only 15 digits, which would change models).
 */
static inline Numeric
EcrmFloat8Numeric(double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, buf);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/* Building a jsonb model (logreg.c, gbdt.c): a key, then its value. */
static inline void
PushKey(JsonbParseState **ps, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &k);
}

static inline void
PushNumber(JsonbParseState **ps, JsonbIteratorToken tok, Numeric num)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = num;
	pushJsonbValue(ps, tok, &v);
}

static inline void
PushKeyFloat(JsonbParseState **ps, const char *key, double d)
{
	PushKey(ps, key);
	PushNumber(ps, WJB_VALUE, EcrmFloat8Numeric(d));
}

static inline void
PushKeyInt(JsonbParseState **ps, const char *key, int64 i)
{
	PushKey(ps, key);
	PushNumber(ps, WJB_VALUE, int64_to_numeric(i));
}

static inline void
PushKeyArray(JsonbParseState **ps, const char *key, const double *a, int n)
{
	PushKey(ps, key);
	pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
		PushNumber(ps, WJB_ELEM, EcrmFloat8Numeric(a[i]));
	pushJsonbValue(ps, WJB_END_ARRAY, NULL);
}

static inline void
PushKeyString(JsonbParseState **ps, const char *key, const char *s)
{
	JsonbValue	v;

	PushKey(ps, key);
	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

static inline void
PushKeyBool(JsonbParseState **ps, const char *key, bool b)
{
	JsonbValue	v;

	PushKey(ps, key);
	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* ARR_DATA_PTR without its signed/unsigned mix, which -Wextra rejects. */
static inline char *
EcrmArrayData(ArrayType *a)
{
	return (char *) a + (ARR_HASNULL(a) ? (Size) a->dataoffset : (Size) ARR_OVERHEAD_NONULLS(ARR_NDIM(a)));
}

/* The element type of a float8[] argument must be float8; its values finite and not NULL. */
extern double *EcrmFloat8Array(ArrayType *a, const char *what, int *n);

#endif							/* ECRM_SCORING_H */
