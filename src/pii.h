/*
 * pii.h — shared declarations of ecrm's privacy kernel: the masking functions
 * (mask.c, generalize.c), pseudonyms (pseudonym.c), PII detection (pii.c) and
 * the name lists they share (names.c).
 */
#ifndef ECRM_PII_H
#define ECRM_PII_H

#include "mb/pg_wchar.h"

/* What a masking function returns for a value it cannot parse: never the value. */
#define ECRM_MASK_INVALID	"***"

/*
 * Masking functions run inside masked views, where an error on one value
 * would break the whole view: a value longer than this is masked as "***"
 * rather than rejected.
 */
#define ECRM_MASK_MAX_BYTES		ECRM_MAX_FIELD_BYTES

/* Longest card number (ISO/IEC 7812) and IBAN (ISO 13616) we look at. */
#define ECRM_CARD_MAX_DIGITS	19
#define ECRM_CARD_MIN_DIGITS	12
#define ECRM_IBAN_MAX			34

/* mask.c */
extern int	EcrmOptionIndex(FunctionCallInfo fcinfo, int argno, const char *fn, const char *arg,
							const char *const *allowed, const char *hint);

/* pii.c */
extern bool EcrmLuhnValid(const char *digits, int n);
extern int	EcrmCardDigits(const char *s, int len, char *digits);
extern int	EcrmIbanCompact(const char *s, int len, char *out);
extern bool EcrmIbanValid(const char *compact, int n);
extern bool EcrmEmailParts(const char *s, int len, int *local_len, int *domain_start);
extern bool EcrmParseIp(const char *s, int len, int *family, unsigned char *addr);
extern bool EcrmLooksLikeIp(const char *s, int len);
extern bool EcrmHoldsPii(const char *s, int len);

/* pseudonym.c */
#define ECRM_HMAC_LEN	32
extern void EcrmHmac(const char *domain, const char *context, int context_len,
					 const char *msg, int msg_len, uint8 *out);
extern void EcrmCheckPseudonymKey(void);

/* names.c */
extern const char *const ecrm_first_names[];
extern const int ecrm_n_first_names;
extern const char *const ecrm_last_names[];
extern const int ecrm_n_last_names;
extern bool EcrmIsCommonName(const char *word, int len);

/* Trim ASCII white space from both ends of [*s, *s + *len). */
static inline void
EcrmTrim(const char **s, int *len)
{
	while (*len > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t' || (*s)[0] == '\n' || (*s)[0] == '\r'))
	{
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
						(*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r'))
		(*len)--;
}

/*
 * Arguments other than the value must not be NULL: the functions that take
 * them are not STRICT so that a bad argument is an error even for a NULL
 * value, which itself gives NULL.
 */
#define ECRM_ARG_NOT_NULL(argno, fn, arg) \
	do { \
		if (PG_ARGISNULL(argno)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("%s of %s must not be null", (arg), (fn)))); \
	} while (0)

/*
 * The text value argument argno of a masking function, trimmed, into *s and
 * *len; false when it is NULL (the function then returns NULL).
 */
static inline bool
EcrmValueArg(FunctionCallInfo fcinfo, int argno, const char **s, int *len)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
		return false;
	t = PG_GETARG_TEXT_PP(argno);
	*s = VARDATA_ANY(t);
	*len = VARSIZE_ANY_EXHDR(t);
	EcrmTrim(s, len);
	return true;
}

/* A text for an error message: at most 40 bytes, cut at a character boundary. */
static inline char *
EcrmClip(const char *s, int len)
{
	return pnstrdup(s, pg_mbcliplen(s, len, 40));
}

#endif							/* ECRM_PII_H */
