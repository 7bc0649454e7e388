/*
 * finite.c — ecrm._finite(): the argument check of every SQL and PL/pgSQL
 * entry point with a number where NaN or an infinity means nothing.  It
 * returns its argument, so a SQL-language function checks inside an
 * expression; the message is that of the C kernel (EcrmCheckFinite).
 */
#include "postgres.h"

#include "ecrm.h"
#include "utils/numeric.h"

/* _finite(value float8, what text): value, or 22023 when NaN or infinite */
PG_FUNCTION_INFO_V1(ecrm_finite_float8);
Datum
ecrm_finite_float8(PG_FUNCTION_ARGS)
{
	float8		v = PG_GETARG_FLOAT8(0);

	if (isnan(v) || isinf(v))
		EcrmCheckFinite(v, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_FLOAT8(v);
}

/* _finite(value numeric, what text): the same for numeric */
PG_FUNCTION_INFO_V1(ecrm_finite_numeric);
Datum
ecrm_finite_numeric(PG_FUNCTION_ARGS)
{
	Numeric		v = PG_GETARG_NUMERIC(0);

	/* as a float8 NaN and the infinities stay what they are */
	if (numeric_is_nan(v) || numeric_is_inf(v))
		EcrmCheckFinite(DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v))),
						text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_NUMERIC(v);
}
