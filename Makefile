# ecrm — PGXS build. The version lives in ecrm.control (default_version) only.
EXTENSION  = ecrm
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = ecrm
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is the parts under sql/install/, joined in name order.
SQL_PARTS  = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA       = $(wildcard sql/$(EXTENSION)--*--*.sql)

# pg_regress: test/sql/X.sql against expected/X.out; isolation: test/isolation/specs/X.spec
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=$(EXTENSION)

PG_CFLAGS  = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lroaring -lm

EXTRA_CLEAN = output_iso

# PGXS tracks no header dependencies: rebuild every object when a header changes.
$(OBJS): $(wildcard src/*.h)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# pseudonym.c hashes with OpenSSL's SHA-256 when PostgreSQL is built with OpenSSL (USE_OPENSSL)
ifeq ($(with_ssl),openssl)
SHLIB_LINK += -lcrypto
endif

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) $(EXTENSION).control
	cat $(SQL_PARTS) > $@

.PHONY: test demo dist
# Every test (pg_regress, isolation, pgTAP, shell) on a throwaway cluster.
test:
	bash test/run.sh
# Build, install, start a throwaway cluster, load demo data and print the tour.
demo:
	bash test/demo.sh
dist:
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ -o $(EXTENSION)-$(EXTVERSION).zip HEAD
