/*
 * ecrm.h — shared declarations of the ecrm extension.
 *
 * Every C file of ecrm includes this header right after postgres.h.
 */
#ifndef ECRM_H
#define ECRM_H

#include "fmgr.h"
#include "utils/builtins.h"

#if PG_VERSION_NUM < 150000
#error "ecrm requires PostgreSQL 15 or later"
#endif

/* GUCs (ecrm.c) */
extern char *ecrm_default_country;
extern double ecrm_progress_interval;

/*
 * Longest text value ecrm's string kernels accept.  Names, emails, phones
 * and addresses are far shorter; the cap keeps quadratic algorithms bounded.
 */
#define ECRM_MAX_FIELD_BYTES	(1024 * 1024)

/* Raise a uniform error for an argument that makes no sense. */
#define ECRM_BAD_ARG(...) \
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg(__VA_ARGS__)))

/*
 * Check that a text argument is not longer than ECRM_MAX_FIELD_BYTES;
 * "what" names the argument in the error.
 */
static inline void
EcrmCheckFieldLength(const text *t, const char *what)
{
	if (VARSIZE_ANY_EXHDR(t) > ECRM_MAX_FIELD_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too long (%zu bytes)", what,
						(size_t) VARSIZE_ANY_EXHDR(t)),
				 errdetail("The limit is %d bytes.", ECRM_MAX_FIELD_BYTES)));
}

/* normalize.c — used by other capabilities too */
extern char *EcrmNormalizeEmail(const char *s, int len);
extern char *EcrmNormalizePhone(const char *s, int len, const char *default_country);
extern int	EcrmPhoneCountryCodeLength(const char *e164digits);
extern const char *EcrmCountryCallingCode(const char *iso2);

#endif							/* ECRM_H */
