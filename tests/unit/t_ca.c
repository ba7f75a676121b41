/*
 * t_ca.c — the CA bundle file: created in a temporary folder (file 0600, folder 0700, no
 * temporary file left), reloaded to the same key and fingerprint, shown as openssl shows
 * it; and refused, with the file named, when the key is PKCS#8, EC, missing, extra or not
 * the certificate's, when the certificate is missing, and at every truncation; a bundle
 * others can read is named in a warning (file.mode), never its content.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bearssl.h>

#include "ca.h"
#include "der.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "rand.h"
#include "test.h"
#include "x509.h"

static struct ca a, b, c;
static char dir[64], sub[96], path[128], bad[128];
static char text[CA_FILE_MAX + 64], good[CA_FILE_MAX];
static size_t tlen, glen;
static char err[512];

/* An OpenSSL-made CA (openssl genrsa -traditional 2048; openssl req -x509 -days 36500,
 * subject O=Example Org, CN=Example Private CA) whose first prime is 1 mod 4: BearSSL
 * cannot recompute e for it, so loading must read n and e from the file. Test key only. */
static const char foreign[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAxQN0W+sremMJHCSEOMHZ2xmW8rJ6XNDfoIeX1qt7f6S/ycJt\n"
    "v0/i1Jm8w9KYDt4GWtPQqbgCaxV2nJfJChGl2eql5j3JUBWl1dPKq1SXxQ9gdguI\n"
    "sRMwo7Wz+yS5I716+xDX+F4p+es/+ajkTgGch5XsoKiTEaoiIjf8adDTzJ6OADRy\n"
    "h/0fgWUkqETx+JT7BPiXH35QHOvT8QqmvyRwXdX58Mrd0vF+J97FXA9UsDam5iXW\n"
    "LHAAKqXh8U1hWA5/4hF5vygv7/EtyoWMQCJykHei6VR6c+mmSFvNX3tZuFCvQzsN\n"
    "uq1q/TUnMq1jBQCY/dHabubDdiSXLe+TLxVxswIDAQABAoIBABvtU288NNuSclYk\n"
    "7wFEqWcfh4A7wJCroyeUUPfDMyxy5CTrhLcb0eGlMVbo4VkqK+hwIiIMzXr0fe3Q\n"
    "rlTZD5OGaaHrnD/X8bwP26jRwvnSJjBVjjjbqYdrWGn/WKcyUt6IErVIU9bzfAwd\n"
    "3s8X92JY5EQZ4U8duNz05rjxOzTD/T3KpHbSs8088luCLgJgjUYbK749BDl1eE2q\n"
    "RPjUgcZ6yOZySTTTmRo44pQ4r5eSya/4jUsNxZMa9fgyTPlFZu/dsEKkDX4UCB8+\n"
    "6H8TO9bqusPx3JP3bQn8M4D8kpOC87hfjvACtoOjDfHnMmxIdlt1kChYsAF12uiY\n"
    "ixV9TdECgYEA7w5B1fr+i8A1hYvvIQGkYOZ77vvmhbIC8nfWQYfqOF6YP8oosBuJ\n"
    "rKL5IERmhxi3T2NWV562WfKTLY1AWW/Y9nnclNDKpsqkH4Az5Z30MsG80aFSxJJP\n"
    "HXCaI31xj6ykbpFvk0rYZYXB872Ze7DpeVcEj5VmaZWimj4Pj44LKT0CgYEA0vpT\n"
    "/TvV/yvrWP6PM8RUpEv/f9AFSZr6Bwd9n365LrX7AJtGbMpJghswzAbew43XmSEy\n"
    "4idZ2HU72C6xrSXQrJbev8aeyS71ecfWiRfo1jTy4E79Hybhb/KsLwDYJPrSPyuB\n"
    "GDzAgT2l+LxOs0LQyCJeFbkgcdjZ0/nBYVH/Va8CgYBjabRrPiPZDiezz8u0GDC5\n"
    "s1/atJrbAnpDRx6sxc7bfksmS/W7ttf8GRItHwTcLaUduJvReEkxArW9/b3C88Zw\n"
    "SaE3qdR8pEy4ZOIwHQ3Ohc72BnabFJUeExOmqqYtL4h6CrUxtbBkF8neiPxo+ds+\n"
    "ALf+1gxu4DFsn15tPo7ZqQKBgHV6mPwgroe5YAKdNQZhY7Rc8TetkNQsrN7vJ9+B\n"
    "RAKjqNHspKl9drMxCtoBVVfVCuGk392YheoHVbyKO7urm+gO1pg5ND/Ymy4lvet2\n"
    "2ds1fqyyrzYCg3O/0GsX8EOfOyWbxvXFFnig6GN6D+S35uQaZwN3o35hfuIPZ8QW\n"
    "UbTXAoGBALjJlOUiTnhFH4xD/X2uKwWdCCmmR6IPkkeAIeXrTELWOn+FAMF+3b6A\n"
    "s32Yq2/2NHPl2gIdsG84oo7XH55U4IE1rvWuToeMDOxx7P5SHFRYcxN1YEyUTWuz\n"
    "evj+Az/M+lcBRf30OSvQwX/0IDTmGOzrnwZVT/2H3y9rRxXLXP/k\n"
    "-----END RSA PRIVATE KEY-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDWTCCAkGgAwIBAgIUWam15bAZfFYodcdzAx+6PaLgF6cwDQYJKoZIhvcNAQEL\n"
    "BQAwMzEUMBIGA1UECgwLRXhhbXBsZSBPcmcxGzAZBgNVBAMMEkV4YW1wbGUgUHJp\n"
    "dmF0ZSBDQTAgFw0yNjExMjMxMTA3MjNaGA8yMTI2MTAzMDExMDcyM1owMzEUMBIG\n"
    "A1UECgwLRXhhbXBsZSBPcmcxGzAZBgNVBAMMEkV4YW1wbGUgUHJpdmF0ZSBDQTCC\n"
    "ASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAMUDdFvrK3pjCRwkhDjB2dsZ\n"
    "lvKyelzQ36CHl9are3+kv8nCbb9P4tSZvMPSmA7eBlrT0Km4AmsVdpyXyQoRpdnq\n"
    "peY9yVAVpdXTyqtUl8UPYHYLiLETMKO1s/skuSO9evsQ1/heKfnrP/mo5E4BnIeV\n"
    "7KCokxGqIiI3/GnQ08yejgA0cof9H4FlJKhE8fiU+wT4lx9+UBzr0/EKpr8kcF3V\n"
    "+fDK3dLxfifexVwPVLA2puYl1ixwACql4fFNYVgOf+IReb8oL+/xLcqFjEAicpB3\n"
    "oulUenPppkhbzV97WbhQr0M7Dbqtav01JzKtYwUAmP3R2m7mw3Ykly3vky8VcbMC\n"
    "AwEAAaNjMGEwHQYDVR0OBBYEFLI9ODgsLWlaUvNBpvyX9oZ/csurMB8GA1UdIwQY\n"
    "MBaAFLI9ODgsLWlaUvNBpvyX9oZ/csurMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P\n"
    "AQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQAGyAtIpuYOuzy4htKVC5BuWnGr\n"
    "gTROrEAkVL4+eDZBPKOCg+cbxoLGQw9w8eEcZ4bOIx6M+MnMrAdEot7HTEL9+AEJ\n"
    "GTEhsgWE3prWDX/vZpnmIDIvUjMQCIELE8gkwLxkkPyG2Vf0ovwm3U5sjGvjBclG\n"
    "rMlRNHc8rFaqSZe3EXh7cBKGlSV6IIvkOFZC9fCzn4gvIcE/JzeVDw23z6s2U7hw\n"
    "hAaGl71g0hFPhDD5Wt1m8rDlP/3XH4NdMnR2lChDYTORj8JcSTAVsfYC/mClDBOu\n"
    "/guVoVPM9VdOxw5CacG8y0tTdTASBj/31szI7FqQ7OPLYFiS8qaX8AIwk5Pv\n"
    "-----END CERTIFICATE-----\n";

static void
put_file(const char *p, const void *data, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		if (write(fd, data, n) != (ssize_t)n)
			printf("     short write to %s\n", p);
		close(fd);
	}
}

static size_t
get_file(const char *p, char *out, size_t cap)
{
	int fd = open(p, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, out, cap) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 ? (size_t)n : 0;
}

static void
add_pem(const void *der, size_t len, const char *banner)
{
	size_t n = br_pem_encode(NULL, der, len, banner, BR_PEM_LINE64);

	if (tlen + n + 1 <= sizeof text)
		tlen += br_pem_encode(text + tlen, der, len, banner, BR_PEM_LINE64);
}

/* Load text[0..tlen) from the file `bad`; expect a refusal naming the file and saying
 * `word`, with the file left as it was. */
static void
refused(const char *word, const char *name)
{
	static char after[sizeof text];
	int r;

	put_file(bad, text, tlen);
	err[0] = '\0';
	r = ca_load_or_create(&b, bad, 2048, "x", err, sizeof err);
	CHECK(r < 0 && strncmp(err, bad, strlen(bad)) == 0 && strstr(err, word) != NULL &&
	    get_file(bad, after, sizeof after) == (tlen < sizeof after ? tlen : sizeof after) &&
	    memcmp(after, text, tlen < sizeof after ? tlen : sizeof after) == 0, name);
	if (r >= 0 || strstr(err, word) == NULL)
		printf("     r=%d err=\"%s\"\n", r, err);
}

static void
create_and_reload(void)
{
	struct stat st;
	DIR *dp;
	struct dirent *e;
	int r, files = 0;

	r = ca_load_or_create(&a, path, 2048, "test-relay", err, sizeof err);
	CHECK_INT(r, ERR_OK, "create the bundle");
	if (r != ERR_OK) {
		printf("     %s\n", err);
		return;
	}
	CHECK_INT(a.created, 1, "created flag set");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "bundle file mode 0600");
	CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700, "created folder mode 0700");
	dp = opendir(sub);
	while (dp && (e = readdir(dp)) != NULL)
		files += e->d_name[0] != '.';
	if (dp)
		closedir(dp);
	CHECK_INT(files, 1, "no temporary file left behind");

	glen = get_file(path, good, sizeof good);
	CHECK(glen > 0 && strncmp(good, "-----BEGIN RSA PRIVATE KEY-----\n", 32) == 0,
	    "file starts with the PKCS#1 key");
	CHECK(strstr(good, "-----BEGIN CERTIFICATE-----\n") != NULL, "file holds the certificate");

	r = ca_load_or_create(&b, path, 4096, "other", err, sizeof err);
	CHECK_INT(r, ERR_OK, "reload the bundle");
	CHECK_INT(b.created, 0, "reload does not create");
	CHECK_MEM(a.cert_sha256, b.cert_sha256, 32, "fingerprint stable across reload");
	CHECK(a.key_der_len == b.key_der_len && a.key_der_len > 1000 &&
	    memcmp(a.key_der, b.key_der, a.key_der_len) == 0, "key DER stable across reload");
	CHECK(a.ski_len == 20 && b.ski_len == 20 && memcmp(a.ski, b.ski, 20) == 0 &&
	    a.name_len == b.name_len && memcmp(a.name, b.name, a.name_len) == 0,
	    "issuer name and key id stable");
	CHECK(b.pk.nlen == 256 && memcmp(a.pk.n, b.pk.n, 256) == 0 && b.pk.elen == 3 &&
	    memcmp(b.pk.e, "\x01\x00\x01", 3) == 0, "public key recovered from the file");
	ca_free(&b);
}

static void
show(void)
{
	char out[8192], want[128], *pem_end;
	size_t n, i, o;
	int fds[2];

	if (pipe(fds) != 0)
		return;
	CHECK_INT(ca_show(&a, fds[1]), ERR_OK, "ca_show");
	close(fds[1]);
	n = (size_t)read(fds[0], out, sizeof out - 1);
	close(fds[0]);
	out[n < sizeof out ? n : 0] = '\0';
	o = (size_t)sprintf(want, "SHA256 Fingerprint=");
	for (i = 0; i < 32; i++)
		o += (size_t)sprintf(want + o, "%02X%s", a.cert_sha256[i], i < 31 ? ":" : "\n");
	pem_end = strstr(out, "-----END CERTIFICATE-----\n");
	CHECK(pem_end != NULL && strcmp(pem_end + 26, want) == 0,
	    "PEM, then SHA256 Fingerprint=AA:BB:... uppercase");
	if (pem_end) {
		pem_end[26] = '\0';
		CHECK(strncmp(out, "-----BEGIN CERTIFICATE-----\n", 28) == 0 &&
		    strstr(good, out) != NULL, "shown PEM is the bundle's certificate");
	}
}

static void
refusals(void)
{
	br_ec_private_key ek;
	br_ec_public_key ep;
	unsigned char kb[BR_EC_KBUF_PRIV_MAX_SIZE], pb[BR_EC_KBUF_PUB_MAX_SIZE];
	unsigned char der[3000], d[512];
	size_t n, dl, i, cut = 0, pos;
	struct der_tlv t;
	int r, all = 1;

	/* PKCS#8 wrapping of the right key */
	dl = br_rsa_compute_privexp_get_default()(d, &a.sk, 65537);
	n = br_encode_rsa_pkcs8_der(der, &a.sk, &a.pk, d, dl);
	tlen = 0;
	add_pem(der, n, "PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("PKCS#8", "PKCS#8 key refused");

	/* an EC key, labelled as such, and labelled as RSA */
	br_ec_keygen(rand_prng(), br_ec_get_default(), &ek, kb, BR_EC_secp256r1);
	br_ec_compute_pub(br_ec_get_default(), &ep, pb, &ek);
	n = br_encode_ec_raw_der(der, &ek, &ep);
	tlen = 0;
	add_pem(der, n, "EC PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("EC key", "EC key refused");
	tlen = 0;
	add_pem(der, n, "RSA PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("not a PKCS#1 RSA key", "EC key under an RSA banner refused");

	/* another CA's key with this certificate */
	r = ca_generate(&c, 2048, "other", 1735689600);
	CHECK_INT(r, ERR_OK, "generate a second CA");
	tlen = 0;
	add_pem(c.key_der, c.key_der_len, "RSA PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("does not match", "mismatched key and certificate refused");
	ca_free(&c);

	/* right n and e, but a damaged prime: caught by the sign-and-verify check */
	memcpy(der, a.key_der, a.key_der_len);
	pos = 0;
	der_read(der, a.key_der_len, &pos, &t);
	pos = (size_t)(t.val - der);
	for (i = 0; i < 5; i++)
		der_read(der, a.key_der_len, &pos, &t);
	der[t.val - der + t.len / 2] ^= 0x10;
	tlen = 0;
	add_pem(der, a.key_der_len, "RSA PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("does not match", "key with a damaged prime refused");

	tlen = 0;
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("no private key", "certificate alone refused");
	tlen = 0;
	add_pem(a.key_der, a.key_der_len, "RSA PRIVATE KEY");
	refused("no certificate", "key alone refused");
	tlen = 0;
	refused("no private key", "empty file refused");
	tlen = 0;
	add_pem(a.key_der, a.key_der_len, "RSA PRIVATE KEY");
	add_pem(a.key_der, a.key_der_len, "RSA PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("more than one", "two keys refused");

	memcpy(text, good, glen);
	tlen = glen / 2;
	refused("truncated", "file cut in half refused");
	memcpy(text, good, glen);
	tlen = glen;
	text[100] = '!';
	refused("damaged", "bad base64 refused");
	memset(text, 'A', sizeof text);
	tlen = CA_FILE_MAX + 1;
	refused("larger than", "oversized file refused");
	CHECK(ca_load_or_create(&b, sub, 2048, "x", err, sizeof err) < 0 &&
	    strstr(err, sub) == err, "a folder as the bundle path refused");

	/* the file as written: cert first, and no final newline, still load */
	tlen = 0;
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	add_pem(a.key_der, a.key_der_len, "RSA PRIVATE KEY");
	put_file(bad, text, tlen - 1);
	r = ca_load_or_create(&b, bad, 2048, "x", err, sizeof err);
	CHECK(r == ERR_OK && memcmp(b.cert_sha256, a.cert_sha256, 32) == 0,
	    "certificate first, no final newline: loads");
	ca_free(&b);

	/* the file with CRLF line ends loads (BearSSL 0.6 misreads a CR in a BEGIN line;
	 * tests/fuzz/corpus/ca/seed-crlf, found by fuzz_ca) */
	for (i = 0, tlen = 0; i < glen && tlen + 2 < sizeof text; i++) {
		if (good[i] == '\n')
			text[tlen++] = '\r';
		text[tlen++] = good[i];
	}
	put_file(bad, text, tlen);
	r = ca_load_or_create(&b, bad, 2048, "x", err, sizeof err);
	CHECK(r == ERR_OK && memcmp(b.cert_sha256, a.cert_sha256, 32) == 0,
	    "CRLF line ends: loads, the same CA");
	if (r != ERR_OK)
		printf("     err=\"%s\"\n", err);
	ca_free(&b);

	/* every prefix of the good file: refused, or the same CA; never anything else */
	for (i = 0; i < glen; i += 1 + i % 7) {
		put_file(bad, good, i);
		r = ca_load_or_create(&b, bad, 2048, "x", err, sizeof err);
		if (r == ERR_OK && memcmp(b.cert_sha256, a.cert_sha256, 32) != 0)
			all = 0;
		if (r == ERR_OK && i < glen - 30)
			all = 0, cut = i;
		ca_free(&b);
	}
	CHECK(all, "every truncation refused (or, within the last banner, the same CA)");
	if (!all)
		printf("     loaded at %zu of %zu\n", cut, glen);

	r = ca_load_or_create(&b, "/nonexistent-relaypro-t_ca/x/ca.pem", 2048, "x", err,
	    sizeof err);
	CHECK(r < 0 && strstr(err, "cannot create folder") != NULL,
	    "missing grandparent folder: error");
	unlink(bad);
	r = ca_load_or_create(&b, bad, 1024, "x", err, sizeof err);
	CHECK(r == ERR_RANGE && strstr(err, "caKeyBits") != NULL && access(bad, F_OK) != 0,
	    "caKeyBits 1024 refused, nothing written");
}

/* Who besides the relay can read or write a secret file (fileio_exposed), and the
 * file.mode warning of a bundle others can read: at load and from ca_warn_mode (every
 * reload), with the file and its mode, never its content. */
static void
mode_warnings(void)
{
	static const struct {
		unsigned mode;
		int own_group;
		const char *want; /* NULL: not exposed */
	} rows[] = {
		{ 0600, 0, NULL }, { 0400, 0, NULL }, { 0700, 0, NULL }, { 0711, 0, NULL },
		{ 0644, 1, "readable by others" }, { 0602, 1, "writable by others" },
		{ 0606, 1, "readable and writable by others" },
		{ 0640, 1, NULL }, { 0660, 1, NULL }, { 0670, 1, NULL },
		{ 0640, 0, "readable by group 65534" }, { 0620, 0, "writable by group 65534" },
		{ 0664, 0, "readable and writable by group 65534 and others" },
		{ 0610, 0, NULL }, { 0641, 0, "readable by group 65534" },
	};
	static char logbuf[8192];
	struct stat st;
	char why[96], name[96];
	size_t i;
	ssize_t n;
	int fds[2], r;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFREG | rows[i].mode;
		st.st_gid = rows[i].own_group ? getegid() : (getegid() == 65534 ? 65533 : 65534);
		snprintf(name, sizeof name, "mode %04o%s: %s", rows[i].mode,
		    rows[i].own_group ? " (own group)" : "", rows[i].want ? rows[i].want : "not exposed");
		why[0] = 0;
		r = fileio_exposed(&st, why, sizeof why);
		if (rows[i].want && getegid() == 65534 && !rows[i].own_group)
			CHECK(r == 1, name); /* the other group is then 65533: the words differ */
		else
			CHECK(rows[i].want ? r == 1 && strcmp(why, rows[i].want) == 0 : r == 0, name);
	}

	if (pipe(fds) != 0)
		return;
	log_use_fd(fds[1]);
	chmod(path, 0644);
	r = ca_load_or_create(&b, path, 2048, "x", err, sizeof err);
	ca_free(&b);
	ca_warn_mode(path);
	chmod(path, 0600);
	ca_warn_mode(path);
	r |= ca_load_or_create(&b, path, 2048, "x", err, sizeof err);
	ca_free(&b);
	log_use_fd(2);
	close(fds[1]);
	n = read(fds[0], logbuf, sizeof logbuf - 1);
	close(fds[0]);
	logbuf[n > 0 ? n : 0] = 0;
	{
		const char *l1 = strstr(logbuf, "\"event\":\"file.mode\"");
		const char *l2 = l1 ? strstr(l1 + 1, "\"event\":\"file.mode\"") : NULL;

		CHECK(r == ERR_OK && l1 && l2 && !strstr(l2 + 1, "\"event\":\"file.mode\""),
		    "0644 bundle: one warning at load, one from ca_warn_mode, none once 0600");
		CHECK(l1 && strstr(l1, path) && strstr(l1, "\"mode\":\"0644\"") &&
		    strstr(l1, "\"what\":\"CA bundle\"") && strstr(l1, "readable by others"),
		    "the warning names the bundle, its mode and why");
	}
	CHECK(!strstr(logbuf, "PRIVATE") && !strstr(logbuf, "MII"),
	    "the warning holds nothing of the file's content");
}

/* A bundle made by OpenSSL: other Name layout, prime 1 mod 4; loads and issues. */
static void
foreign_ca(void)
{
	static struct x509_server srv;
	unsigned char want[32];
	int r;

	put_file(bad, foreign, sizeof foreign - 1);
	r = ca_load_or_create(&b, bad, 2048, "x", err, sizeof err);
	CHECK_INT(r, ERR_OK, "OpenSSL-made bundle loads");
	if (r != ERR_OK) {
		printf("     %s\n", err);
		return;
	}
	t_unhex("cbd8008b93f45b5e66337b1516b6ef8c7ab475ffa75df6b8fbf5f47506b786a8", want, 32);
	CHECK_MEM(b.cert_sha256, want, 32, "its fingerprint matches openssl's");
	t_unhex("b23d38382c2d695a52f341a6fc97f6867f72cbab", want, 20);
	CHECK(b.ski_len == 20 && memcmp(b.ski, want, 20) == 0, "its SKI read from the certificate");
	CHECK(b.name_len > 40 && memmem(b.name, b.name_len, "Example Org", 11) != NULL &&
	    memmem(b.name, b.name_len, "Example Private CA", 18) != NULL,
	    "its two-RDN subject copied whole");
	CHECK(b.pk.elen == 3 && b.pk.nlen == 256, "n and e read from the key file");
	CHECK_INT(x509_mint_server(&srv, &b.issuer, "relay.example.org", NULL, 0, BR_KEYTYPE_EC,
	    1735689600), ERR_OK, "it mints a server certificate");
	x509_server_free(&srv);
	ca_free(&b);
}

void
t_ca(void)
{
	snprintf(dir, sizeof dir, "/tmp/relaypro-t_ca-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	snprintf(sub, sizeof sub, "%s/private", dir);
	snprintf(path, sizeof path, "%s/ca-bundle.pem", sub);
	snprintf(bad, sizeof bad, "%s/bad.pem", dir);
	create_and_reload();
	if (a.cert_len > 0) {
		show();
		refusals();
		foreign_ca();
		mode_warnings();
	}
	ca_free(&a);
	unlink(path);
	unlink(bad);
	rmdir(sub);
	rmdir(dir);
}
