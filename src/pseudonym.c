/*
 * pseudonym.c — keyed pseudonyms: HMAC-SHA256 tokens that keep joins and
 * counts working, and format-preserving pseudonyms (a fake but valid email
 * address, a phone number with the same calling code, a plausible name).
 *
 * The key is an argument, never a setting these functions read: a masked
 * view passes it from a table only the view's owner can read (see
 * 45_privacy.sql), so a masked role can run the masked view without being
 * able to compute pseudonyms of guessed values itself.  That also makes every
 * function here a pure function of its arguments (IMMUTABLE).
 *
 * Every HMAC input is "domain \0 context \0 value", so pseudonyms of
 * different kinds (an email and a name) or contexts never collide on purpose.
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "ecrm.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "pii.h"

#define KEY_MIN_BYTES	16
#define KEY_MAX_BYTES	1024

/*
 * HMAC-SHA256 of domain, context and msg under key, into out[ECRM_HMAC_LEN].
 * PostgreSQL's HMAC (OpenSSL's when built with it) does the work.
 */
void
EcrmHmac(const bytea *key, const char *domain, const char *context, int context_len,
		 const char *msg, int msg_len, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	static const uint8 zero = 0;

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) domain, strlen(domain)) < 0 ||
		pg_hmac_update(ctx, &zero, 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) context, context_len) < 0 ||
		pg_hmac_update(ctx, &zero, 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg, msg_len) < 0 ||
		pg_hmac_final(ctx, out, ECRM_HMAC_LEN) < 0)
	{
		const char *err = pstrdup(pg_hmac_error(ctx));

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC-SHA256: %s", err);
	}
	pg_hmac_free(ctx);
}

/*
 * The key argument of a pseudonym function, checked.  The error never shows
 * the key, only its length.
 */
const bytea *
EcrmPseudonymKey(FunctionCallInfo fcinfo, int argno)
{
	bytea	   *key;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no pseudonym key was given"),
				 errdetail("Pseudonyms are keyed; a masked view passes the key from ecrm.pseudonym_secret, which has no key."),
				 errhint("An administrator sets one with SELECT ecrm.set_pseudonym_key().")));
	key = PG_GETARG_BYTEA_PP(argno);
	len = VARSIZE_ANY_EXHDR(key);
	if (len < KEY_MIN_BYTES || len > KEY_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pseudonym key must be %d to %d bytes long", KEY_MIN_BYTES, KEY_MAX_BYTES),
				 errdetail("The key given is %d bytes long.", len)));
	return key;
}

/* The context argument (a namespace for tokens); NULL means none. */
static void
ContextArg(FunctionCallInfo fcinfo, int argno, const char **ctx, int *len)
{
	text	   *t;

	*ctx = "";
	*len = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return;
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("context of a pseudonym is too long (%d bytes)", (int) VARSIZE_ANY_EXHDR(t)),
				 errdetail("The limit is 200 bytes.")));
	*ctx = VARDATA_ANY(t);
	*len = VARSIZE_ANY_EXHDR(t);
}

static const char hexdigits[] = "0123456789abcdef";

/* A deterministic token (16 hex digits, 64 bits) for a value under a key and context. */
PG_FUNCTION_INFO_V1(ecrm_pseudonym);
Datum
ecrm_pseudonym(PG_FUNCTION_ARGS)
{
	const bytea *key = EcrmPseudonymKey(fcinfo, 1);
	text	   *t;
	const char *ctx;
	int			ctxlen;
	uint8		mac[ECRM_HMAC_LEN];
	char		out[16];

	ContextArg(fcinfo, 2, &ctx, &ctxlen);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	EcrmCheckFieldLength(t, "value");
	EcrmHmac(key, "token", ctx, ctxlen, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), mac);
	for (int i = 0; i < 8; i++)
	{
		out[2 * i] = hexdigits[mac[i] >> 4];
		out[2 * i + 1] = hexdigits[mac[i] & 15];
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, 16));
}

/* A deterministic positive bigint pseudonym of an id under a key and context. */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_id);
Datum
ecrm_pseudonym_id(PG_FUNCTION_ARGS)
{
	const bytea *key = EcrmPseudonymKey(fcinfo, 1);
	const char *ctx;
	int			ctxlen;
	int64		v;
	char		buf[8];
	uint8		mac[ECRM_HMAC_LEN];
	uint64		x = 0;

	ContextArg(fcinfo, 2, &ctx, &ctxlen);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_INT64(0);
	for (int i = 0; i < 8; i++)
		buf[i] = (char) ((uint64) v >> (56 - 8 * i));
	EcrmHmac(key, "id", ctx, ctxlen, buf, 8, mac);
	for (int i = 0; i < 8; i++)
		x = (x << 8) | mac[i];
	/* 1 .. 2^63 - 1 */
	PG_RETURN_INT64((int64) (x >> 1) | 1);
}

static inline uint32
Bytes32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

static void
AppendLower(StringInfo out, const char *s)
{
	for (; *s; s++)
		appendStringInfoChar(out, pg_ascii_tolower((unsigned char) *s));
}

/*
 * A fake email address for an email address: "given.surname12345@example.org"
 * (the reserved domains example.com, .net and .org never deliver mail).  The
 * address is normalised first, so spellings of one address (case, Gmail dots,
 * +tags) get one pseudonym; a value that is not an address still gets a fake
 * address of its own.  About 36 bits: expect a dozen shared pseudonyms among
 * a million addresses.
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_email);
Datum
ecrm_pseudonym_email(PG_FUNCTION_ARGS)
{
	static const char *const domains[] = {"example.com", "example.net", "example.org"};
	const bytea *key = EcrmPseudonymKey(fcinfo, 1);
	text	   *t;
	const char *s;
	int			len;
	char	   *norm;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	EcrmCheckFieldLength(t, "email");
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	EcrmTrim(&s, &len);
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	norm = EcrmNormalizeEmail(s, len);
	if (norm == NULL)
	{
		norm = palloc(len + 1);
		for (int i = 0; i < len; i++)
			norm[i] = pg_ascii_tolower((unsigned char) s[i]);
		norm[len] = '\0';
	}
	EcrmHmac(key, "email", "", 0, norm, strlen(norm), mac);
	initStringInfo(&out);
	AppendLower(&out, ecrm_first_names[Bytes32(mac) % ecrm_n_first_names]);
	appendStringInfoChar(&out, '.');
	AppendLower(&out, ecrm_last_names[Bytes32(mac + 4) % ecrm_n_last_names]);
	appendStringInfo(&out, "%05u@%s", Bytes32(mac + 8) % 100000, domains[mac[12] % 3]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * A fake phone number for a phone number: an international one keeps "+",
 * its calling code, its length and the first digit of its national number
 * (mobile or fixed line in many plans); the other digits come from the HMAC
 * of its E.164 form.  A national number (digits only) keeps its length and
 * first digit; anything else becomes "***".
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_phone);
Datum
ecrm_pseudonym_phone(PG_FUNCTION_ARGS)
{
	const bytea *key = EcrmPseudonymKey(fcinfo, 1);
	text	   *t;
	const char *s;
	int			len;
	char		digits[16];
	int			nd = 0;
	const char *national;
	int			nlen;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	EcrmCheckFieldLength(t, "phone");
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	EcrmTrim(&s, &len);
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	initStringInfo(&out);
	if (s[0] == '+' || (len > 2 && s[0] == '0' && s[1] == '0'))
	{
		char	   *e164 = EcrmNormalizePhone(s, len, NULL);
		int			cclen;

		if (e164 == NULL)
			PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
		cclen = EcrmPhoneCountryCodeLength(e164 + 1);
		EcrmHmac(key, "phone", "", 0, e164, strlen(e164), mac);
		appendBinaryStringInfo(&out, e164, 1 + cclen);
		national = e164 + 1 + cclen;
		nlen = strlen(national);
	}
	else
	{
		for (int i = 0; i < len; i++)
		{
			if (s[i] >= '0' && s[i] <= '9')
			{
				if (nd == 15)
					PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
				digits[nd++] = s[i];
			}
			else if (!(s[i] == ' ' || s[i] == '-' || s[i] == '.' || s[i] == '(' || s[i] == ')' || s[i] == '/'))
				PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
		}
		if (nd < 5)
			PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
		EcrmHmac(key, "phone", "", 0, digits, nd, mac);
		national = digits;
		nlen = nd;
	}
	appendStringInfoChar(&out, national[0]);
	for (int i = 1; i < nlen; i++)
		appendStringInfoChar(&out, '0' + mac[i] % 10);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * A plausible fake name for a name: part 'full' gives "Given Surname",
 * 'first' a given name, 'last' a surname.  The name is compared ignoring
 * case and runs of white space.
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_name);
Datum
ecrm_pseudonym_name(PG_FUNCTION_ARGS)
{
	const bytea *key = EcrmPseudonymKey(fcinfo, 1);
	int			part = 0;		/* 0 full, 1 first, 2 last */
	text	   *t;
	const char *s;
	int			len;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData norm;
	StringInfoData out;

	if (PG_NARGS() > 2)
	{
		char	   *p;

		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("part of pseudonym_name must not be null")));
		p = text_to_cstring(PG_GETARG_TEXT_PP(2));
		if (strcmp(p, "full") == 0)
			part = 0;
		else if (strcmp(p, "first") == 0)
			part = 1;
		else if (strcmp(p, "last") == 0)
			part = 2;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown part \"%s\" for pseudonym_name", p),
					 errhint("Use one of: full, first, last.")));
	}
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	EcrmCheckFieldLength(t, "name");
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	EcrmTrim(&s, &len);
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	initStringInfo(&norm);
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
		{
			if (norm.len > 0 && norm.data[norm.len - 1] != ' ')
				appendStringInfoChar(&norm, ' ');
		}
		else
			appendStringInfoChar(&norm, pg_ascii_tolower(c));
	}
	EcrmHmac(key, "name", "", 0, norm.data, norm.len, mac);
	initStringInfo(&out);
	if (part != 2)
		appendStringInfoString(&out, ecrm_first_names[Bytes32(mac) % ecrm_n_first_names]);
	if (part == 0)
		appendStringInfoChar(&out, ' ');
	if (part != 1)
		appendStringInfoString(&out, ecrm_last_names[Bytes32(mac + 4) % ecrm_n_last_names]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
