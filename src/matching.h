/*
 * matching.h — declarations shared by the identity-resolution kernel:
 * normalize_person.c (dates), similarity.c (string kernels, comparison
 * levels), fellegi_sunter.c (weights, EM) and cluster.c (union-find).
 */
#ifndef ECRM_MATCHING_H
#define ECRM_MATCHING_H

#include "mb/pg_wchar.h"

/* normalize_person.c: Julian day of a date written in any common way, or -1 */
extern int	EcrmParseDateJulian(const char *s, int len);

/* similarity.c: kernels over code points */
extern double EcrmJaro(const pg_wchar *a, int la, const pg_wchar *b, int lb);
extern double EcrmJaroWinkler(const pg_wchar *a, int la, const pg_wchar *b, int lb,
							  double prefix_scale);
extern int	EcrmDamerauLevenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb,
								   int max_distance);

/* The most levels one comparison may have (missing is not a level). */
#define ECRM_MAX_LEVELS 16
/* The most comparisons one model may have. */
#define ECRM_MAX_COMPARISONS 64

/* Data of an array known to have no nulls (ARR_DATA_PTR trips -Wsign-compare). */
#define ECRM_ARR_DATA(a) ((void *) (((char *) (a)) + ARR_OVERHEAD_NONULLS(ARR_NDIM(a))))

#endif							/* ECRM_MATCHING_H */
