/*
 * pseudonym.c — keyed pseudonyms: HMAC-SHA256 tokens that keep joins and
 * counts working, and format-preserving pseudonyms (a fake but valid email
 * address, a phone number with the same calling code, a plausible name).
 *
 * The key is the superuser-only setting ecrm.pseudonym_key (ecrm.c), so these
 * functions are STABLE, not IMMUTABLE.  The optional context separates
 * pseudonym spaces: the same value gets unrelated pseudonyms in different
 * contexts.  Masked views pass a secret context that only the views' owner
 * can read (ecrm.mask_secret), so a masked role, which must be able to call
 * these functions for the views to work, still cannot compute the pseudonym
 * of a guessed value and look it up.
 *
 * Every HMAC input is "domain \0 context \0 value", so pseudonyms of
 * different kinds (an email and a name) never collide on purpose.
 */
#include "postgres.h"

#ifdef USE_OPENSSL
#include <openssl/sha.h>
#endif

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "ecrm.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "pii.h"
#include "utils/memutils.h"

#define KEY_MIN_BYTES	16

/* The key from ecrm.pseudonym_key; errors never show it, nor its length. */
static const char *
PseudonymKey(int *len)
{
	const char *key = ecrm_pseudonym_key;

	if (key == NULL || key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ecrm.pseudonym_key is not set"),
				 errdetail("Pseudonyms and keyed noise are HMAC-SHA256 under a secret key that only a superuser can set and read."),
				 errhint("Set it in postgresql.conf or with ALTER SYSTEM SET ecrm.pseudonym_key = '...' and SELECT pg_reload_conf().")));
	*len = strlen(key);
	if (*len < KEY_MIN_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ecrm.pseudonym_key is too short"),
				 errdetail("The key must be at least %d bytes long.", KEY_MIN_BYTES)));
	return key;
}

/* Fail early, before any value is looked at, when no usable key is set. */
void
EcrmCheckPseudonymKey(void)
{
	int			len;

	(void) PseudonymKey(&len);
}

#ifdef USE_OPENSSL

/*
 * HMAC's key schedule depends on the key only: SHA-256 of the key block
 * XOR ipad, and of the key block XOR opad.  Both states are kept here for
 * the current key and copied per call, so a pseudonym costs two SHA-256
 * blocks instead of four plus the allocation of an HMAC context (pg_hmac
 * allocates and registers one per call).  A changed key (the value of
 * ecrm.pseudonym_key, compared byte by byte) recomputes them.
 */
typedef struct HmacKeyState
{
	char	   *key;			/* copy of the key the states belong to */
	int			keylen;
	SHA256_CTX	inner;			/* after the key block XOR ipad */
	SHA256_CTX	outer;			/* after the key block XOR opad */
} HmacKeyState;

static HmacKeyState hmac_state;

static const HmacKeyState *
HmacKeySchedule(void)
{
	int			keylen;
	const char *key = PseudonymKey(&keylen);
	uint8		block[SHA256_CBLOCK];
	uint8		pad[SHA256_CBLOCK];

	if (hmac_state.key != NULL && hmac_state.keylen == keylen &&
		memcmp(hmac_state.key, key, keylen) == 0)
		return &hmac_state;

	if (hmac_state.key != NULL)
	{
		explicit_bzero(hmac_state.key, hmac_state.keylen);
		pfree(hmac_state.key);
		hmac_state.key = NULL;
	}
	/* RFC 2104: a key longer than a block is replaced by its hash */
	memset(block, 0, sizeof(block));
	if (keylen > SHA256_CBLOCK)
		SHA256((const unsigned char *) key, keylen, block);
	else
		memcpy(block, key, keylen);
	for (int i = 0; i < SHA256_CBLOCK; i++)
		pad[i] = block[i] ^ 0x36;
	SHA256_Init(&hmac_state.inner);
	SHA256_Update(&hmac_state.inner, pad, SHA256_CBLOCK);
	for (int i = 0; i < SHA256_CBLOCK; i++)
		pad[i] = block[i] ^ 0x5c;
	SHA256_Init(&hmac_state.outer);
	SHA256_Update(&hmac_state.outer, pad, SHA256_CBLOCK);
	explicit_bzero(block, sizeof(block));
	explicit_bzero(pad, sizeof(pad));
	hmac_state.key = MemoryContextAlloc(TopMemoryContext, keylen);
	memcpy(hmac_state.key, key, keylen);
	hmac_state.keylen = keylen;
	return &hmac_state;
}

/*
 * HMAC-SHA256 of "domain \0 context \0 msg" under the key, into
 * out[ECRM_HMAC_LEN]: the same bytes as pg_hmac (the test pseudonym.sql
 * checks them against pgcrypto's hmac()).
 */
void
EcrmHmac(const char *domain, const char *context, int context_len,
		 const char *msg, int msg_len, uint8 *out)
{
	const HmacKeyState *ks = HmacKeySchedule();
	static const uint8 zero = 0;
	SHA256_CTX	c = ks->inner;
	uint8		inner[SHA256_DIGEST_LENGTH];

	SHA256_Update(&c, domain, strlen(domain) + 1);
	SHA256_Update(&c, context, context_len);
	SHA256_Update(&c, &zero, 1);
	SHA256_Update(&c, msg, msg_len);
	SHA256_Final(inner, &c);
	c = ks->outer;
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(out, &c);
}

#else							/* !USE_OPENSSL */

/*
 * HMAC-SHA256 of domain, context and msg under the key, into
 * out[ECRM_HMAC_LEN], by PostgreSQL's own HMAC (a build without OpenSSL).
 */
void
EcrmHmac(const char *domain, const char *context, int context_len,
		 const char *msg, int msg_len, uint8 *out)
{
	int			keylen;
	const char *key = PseudonymKey(&keylen);
	int			dlen = strlen(domain);
	Size		total = add_size(add_size(dlen + 2, context_len), msg_len);
	char		stackbuf[512];
	char	   *buf = total <= sizeof(stackbuf) ? stackbuf : palloc(total);
	pg_hmac_ctx *ctx;

	/* one update: "domain \0 context \0 msg" */
	memcpy(buf, domain, dlen);
	buf[dlen] = '\0';
	memcpy(buf + dlen + 1, context, context_len);
	buf[dlen + 1 + context_len] = '\0';
	memcpy(buf + dlen + 2 + context_len, msg, msg_len);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) buf, total) < 0 ||
		pg_hmac_final(ctx, out, ECRM_HMAC_LEN) < 0)
	{
		const char *err = pstrdup(pg_hmac_error(ctx));

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC-SHA256: %s", err);
	}
	pg_hmac_free(ctx);
	if (buf != stackbuf)
		pfree(buf);
}

#endif							/* USE_OPENSSL */

/* The context argument (a namespace for pseudonyms); NULL means none. */
static void
ContextArg(FunctionCallInfo fcinfo, int argno, const char **ctx, int *len)
{
	text	   *t;

	*ctx = "";
	*len = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return;
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("context of a pseudonym is too long (%d bytes)", (int) VARSIZE_ANY_EXHDR(t)),
				 errdetail("The limit is 1000 bytes.")));
	*ctx = VARDATA_ANY(t);
	*len = VARSIZE_ANY_EXHDR(t);
}

static const char hexdigits[] = "0123456789abcdef";

/* A deterministic token (16 hex digits, 64 bits) for a value under the key and a context. */
PG_FUNCTION_INFO_V1(ecrm_pseudonym);
Datum
ecrm_pseudonym(PG_FUNCTION_ARGS)
{
	text	   *t;
	const char *ctx;
	int			ctxlen;
	uint8		mac[ECRM_HMAC_LEN];
	char		out[16];

	EcrmCheckPseudonymKey();
	ContextArg(fcinfo, 1, &ctx, &ctxlen);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	EcrmHmac("token", ctx, ctxlen, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), mac);
	for (int i = 0; i < 8; i++)
	{
		out[2 * i] = hexdigits[mac[i] >> 4];
		out[2 * i + 1] = hexdigits[mac[i] & 15];
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out, 16));
}

/* A deterministic positive bigint pseudonym of an id under the key and a context. */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_id);
Datum
ecrm_pseudonym_id(PG_FUNCTION_ARGS)
{
	const char *ctx;
	int			ctxlen;
	int64		v;
	char		buf[8];
	uint8		mac[ECRM_HMAC_LEN];
	uint64		x = 0;

	EcrmCheckPseudonymKey();
	ContextArg(fcinfo, 1, &ctx, &ctxlen);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = PG_GETARG_INT64(0);
	for (int i = 0; i < 8; i++)
		buf[i] = (char) ((uint64) v >> (56 - 8 * i));
	EcrmHmac("id", ctx, ctxlen, buf, 8, mac);
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
 * A fake email address for an email address: "given.surname048213@example.org"
 * (the reserved domains example.com, .net and .org never deliver mail).  The
 * address is normalised first, so spellings of one address (case, Gmail dots,
 * +tags) get one pseudonym; a value that is not an address still gets a fake
 * address of its own.  About 37 bits: expect a few shared pseudonyms among a
 * million addresses (ecrm.pseudonym gives 64-bit tokens for exact joins).
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_email);
Datum
ecrm_pseudonym_email(PG_FUNCTION_ARGS)
{
	static const char *const domains[] = {"example.com", "example.net", "example.org"};
	const char *s;
	const char *ctx;
	int			ctxlen;
	int			len;
	char	   *norm;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData out;

	EcrmCheckPseudonymKey();
	ContextArg(fcinfo, 1, &ctx, &ctxlen);
	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	norm = len <= 320 ? EcrmNormalizeEmail(s, len) : NULL;
	if (norm == NULL)
	{
		norm = palloc(len + 1);
		for (int i = 0; i < len; i++)
			norm[i] = pg_ascii_tolower((unsigned char) s[i]);
		norm[len] = '\0';
	}
	EcrmHmac("email", ctx, ctxlen, norm, strlen(norm), mac);
	initStringInfo(&out);
	AppendLower(&out, ecrm_first_names[Bytes32(mac) % ecrm_n_first_names]);
	appendStringInfoChar(&out, '.');
	AppendLower(&out, ecrm_last_names[Bytes32(mac + 4) % ecrm_n_last_names]);
	appendStringInfo(&out, "%06u@%s", Bytes32(mac + 8) % 1000000, domains[mac[12] % 3]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * A fake phone number for a phone number: an international one ("+44 ...",
 * "0044 ...", or a national one read in the country of ecrm.default_country)
 * becomes an E.164 number with the same calling code, the same length and the
 * same first national digit (mobile or fixed line in many numbering plans);
 * the other digits come from the HMAC of its E.164 form.  Other digit strings
 * keep their length and first digit; anything else becomes "***".
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_phone);
Datum
ecrm_pseudonym_phone(PG_FUNCTION_ARGS)
{
	const char *s;
	const char *ctx;
	int			ctxlen;
	int			len;
	char		digits[16];
	int			nd = 0;
	const char *national;
	int			nlen;
	char	   *e164 = NULL;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData out;

	EcrmCheckPseudonymKey();
	ContextArg(fcinfo, 1, &ctx, &ctxlen);
	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
	if (len == 0)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	if (len > 100)
		PG_RETURN_TEXT_P(cstring_to_text(ECRM_MASK_INVALID));
	initStringInfo(&out);
	e164 = EcrmNormalizePhone(s, len, ecrm_default_country);
	if (e164 != NULL)
	{
		int			cclen = EcrmPhoneCountryCodeLength(e164 + 1);

		EcrmHmac("phone", ctx, ctxlen, e164, strlen(e164), mac);
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
		EcrmHmac("phone", ctx, ctxlen, digits, nd, mac);
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
 * ASCII case and runs of white space.
 */
PG_FUNCTION_INFO_V1(ecrm_pseudonym_name);
Datum
ecrm_pseudonym_name(PG_FUNCTION_ARGS)
{
	static const char *const name_parts[] = {"full", "first", "last", NULL};
	int			part;			/* 0 full, 1 first, 2 last */
	const char *s;
	const char *ctx;
	int			ctxlen;
	int			len;
	uint8		mac[ECRM_HMAC_LEN];
	StringInfoData norm;
	StringInfoData out;

	part = EcrmOptionIndex(fcinfo, 1, "pseudonym_name", "part", name_parts, "full, first, last");
	EcrmCheckPseudonymKey();
	ContextArg(fcinfo, 2, &ctx, &ctxlen);
	if (!EcrmValueArg(fcinfo, 0, &s, &len))
		PG_RETURN_NULL();
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
	EcrmHmac("name", ctx, ctxlen, norm.data, norm.len, mac);
	initStringInfo(&out);
	if (part != 2)
		appendStringInfoString(&out, ecrm_first_names[Bytes32(mac) % ecrm_n_first_names]);
	if (part == 0)
		appendStringInfoChar(&out, ' ');
	if (part != 1)
		appendStringInfoString(&out, ecrm_last_names[Bytes32(mac + 4) % ecrm_n_last_names]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
