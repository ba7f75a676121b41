# vendor/bearssl.mk — compile BearSSL's sources into a static archive.
# Called by vendor/fetch.sh with SRC (extracted source tree), OUT (object folder),
# CC (the musl compiler for one architecture) and LIB (the archive to write).
# Size flags match relaypro's own so the linker can drop every unused function.

BEARSSL_CFLAGS = -Os -ffunction-sections -fdata-sections -fstack-protector-strong \
	-I$(SRC)/inc -I$(SRC)/src

SRCS := $(shell find $(SRC)/src -name '*.c' | sort)
OBJS := $(patsubst $(SRC)/src/%.c,$(OUT)/%.o,$(SRCS))

$(LIB): $(OBJS)
	rm -f $@.tmp
	$(AR) rcs $@.tmp $(OBJS)
	mv $@.tmp $@

$(OUT)/%.o: $(SRC)/src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BEARSSL_CFLAGS) -c -o $@ $<
