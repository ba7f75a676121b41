/*
 * t_ca.c — the CA bundle file: created in a temporary folder (file 0600, folder 0700, no
 * temporary file left), reloaded to the same key and fingerprint, shown as openssl shows
 * it; and refused, with the file named, when the key is PKCS#8, EC, missing, extra or not
 * the certificate's, when the certificate is missing, and at every truncation.
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
#include "err.h"
#include "rand.h"
#include "test.h"

static struct ca a, b, c;
static char dir[64], sub[96], path[128], bad[128];
static char text[CA_FILE_MAX + 64], good[CA_FILE_MAX];
static size_t tlen, glen;
static char err[512];

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
	size_t n, dl, i, cut = 0;
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
	refused("not an RSA key", "EC key under an RSA banner refused");

	/* another CA's key with this certificate */
	r = ca_generate(&c, 2048, "other", 1735689600);
	CHECK_INT(r, ERR_OK, "generate a second CA");
	tlen = 0;
	add_pem(c.key_der, c.key_der_len, "RSA PRIVATE KEY");
	add_pem(a.cert, a.cert_len, "CERTIFICATE");
	refused("does not match", "mismatched key and certificate refused");
	ca_free(&c);

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
	}
	ca_free(&a);
	unlink(path);
	unlink(bad);
	rmdir(sub);
	rmdir(dir);
}
