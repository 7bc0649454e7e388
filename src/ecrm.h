/*
 * ecrm.h — shared declarations of the ecrm extension.
 *
 * Every C file of ecrm includes this header right after postgres.h.
 */
#ifndef ECRM_H
#define ECRM_H

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

#if PG_VERSION_NUM < 150000
#error "ecrm requires PostgreSQL 15 or later"
#endif

/* GUCs (ecrm.c) */
extern char *ecrm_default_country;
extern char *ecrm_lifecycle_reason;
extern bool ecrm_segment_realtime;
extern bool ecrm_restoring;
extern char *ecrm_lead_score_model;
extern char *ecrm_conversion_model;
extern bool ecrm_score_on_write;
extern char *ecrm_pseudonym_key;
extern int	ecrm_realtime_resolution;

/* values of ecrm.realtime_resolution */
#define ECRM_RESOLVE_OFF	0
#define ECRM_RESOLVE_REVIEW	1
#define ECRM_RESOLVE_MERGE	2
extern int	ecrm_idset_max_memory;
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

/*
 * Refuse NaN and infinities where they mean nothing (every numeric entry
 * point calls one of these); "what" names the argument in the error.
 */
static inline void
EcrmCheckFinite(double v, const char *what)
{
	if (unlikely(isnan(v) || isinf(v)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, not %s", what,
						isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity")),
				 errdetail("ecrm refuses NaN and infinities where they have no meaning.")));
}

/* The same for n doubles, naming the 1-based element. */
static inline void
EcrmCheckFiniteArray(const double *v, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (unlikely(isnan(v[i]) || isinf(v[i])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must hold finite numbers, but element %d is %s", what, i + 1,
							isnan(v[i]) ? "NaN" : (v[i] > 0 ? "Infinity" : "-Infinity")),
					 errdetail("ecrm refuses NaN and infinities where they have no meaning.")));
}

/* normalize.c — used by other capabilities too */
extern char *EcrmNormalizeEmail(const char *s, int len);
extern char *EcrmNormalizePhone(const char *s, int len, const char *default_country);
extern int	EcrmPhoneCountryCodeLength(const char *e164digits);
extern const char *EcrmCountryCallingCode(const char *iso2);

#endif							/* ECRM_H */
