/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crypttab_token_timeout(): which crypttab entry is the volume's (UUID=, upper-case UUID,
 * a path to the same file, comments and other volumes skipped) and how its token-timeout=
 * reads (systemd.time(7) spans: "45", "45s", "1min30s", "500ms", "0"; a bad span -EINVAL).
 * On a header-only LUKS2 image in a temporary directory.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "crypttab.h"
#include "internal.h"
#include "test.h"

static char dir[] = "/tmp/kc-crypttab.XXXXXX";
static char img[64], tab[64];

/* As the token plugin asks: by the volume's UUID and its device's real path. */
static int token_timeout(const char *path, struct crypt_device *cd, unsigned *t)
{
	char *dev = realpath(crypt_get_device_name(cd), NULL);
	int r = crypttab_token_timeout(path, crypt_get_uuid(cd), dev, t);

	free(dev);
	return r;
}

/* The timeout that crypttab text TEXT gives the volume; RET gets the function's result. */
static unsigned timeout_of(struct crypt_device *cd, const char *text, int *ret)
{
	unsigned t = 12345;
	FILE *f = fopen(tab, "w");

	fputs(text, f);
	fclose(f);
	*ret = token_timeout(tab, cd, &t);
	return t;
}

int main(void)
{
	struct crypt_device *cd = NULL;
	char line[512], upper[64];
	const char *uuid;
	unsigned t = 3;
	FILE *f;
	int r;

	if (!mkdtemp(dir))
		return 99;
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(tab, sizeof(tab), "%s/crypttab", dir);
	f = fopen(img, "w");
	if (!f || ftruncate(fileno(f), 32 << 20) < 0)
		return 99;
	fclose(f);
	if (crypt_init(&cd, img) < 0 ||
	    crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, NULL) < 0) {
		fprintf(stderr, "cannot format %s\n", img);
		return 99;
	}
	uuid = crypt_get_uuid(cd);

	snprintf(line, sizeof(line), "# comment\nother UUID=00000000-0000-0000-0000-000000000000 "
		 "none luks,token-timeout=7\nvol UUID=%s none luks,x-initrd.attach,token-timeout=45\n",
		 uuid);
	CHECK_EQ(timeout_of(cd, line, &r), 45);
	CHECK_EQ(r, 1);
	for (size_t i = 0; i <= strlen(uuid); i++)
		upper[i] = (char)toupper((unsigned char)uuid[i]);
	snprintf(line, sizeof(line), "vol uuid=%s none token-timeout=45s\n", upper);
	CHECK_EQ(timeout_of(cd, line, &r), 45);
	snprintf(line, sizeof(line), "vol %s/../%s/disk.img - luks,token-timeout=1min30s\n", dir,
		 strrchr(dir, '/') + 1);
	CHECK_EQ(timeout_of(cd, line, &r), 90);
	CHECK_EQ(r, 1);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=500ms\n", img);
	CHECK_EQ(timeout_of(cd, line, &r), 1);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=0\n", img);
	CHECK_EQ(timeout_of(cd, line, &r), 0);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=2h\n", img);
	CHECK_EQ(timeout_of(cd, line, &r), 7200);
	snprintf(line, sizeof(line), "vol %s none luks,discard\n", img);
	CHECK_EQ(timeout_of(cd, line, &r), 12345);	/* the caller's default stays */
	CHECK_EQ(r, 1);
	snprintf(line, sizeof(line), "vol %s\n", img);	/* no key, no options */
	CHECK_EQ(timeout_of(cd, line, &r), 12345);
	CHECK_EQ(r, 1);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=soon\n", img);
	CHECK_EQ(timeout_of(cd, line, &r), 12345);
	CHECK_EQ(r, -EINVAL);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=5parsecs\n", img);
	timeout_of(cd, line, &r);
	CHECK_EQ(r, -EINVAL);
	snprintf(line, sizeof(line), "vol %s none luks,token-timeout=\n", img);
	timeout_of(cd, line, &r);
	CHECK_EQ(r, -EINVAL);
	CHECK_EQ(timeout_of(cd, "a UUID=00000000-0000-0000-0000-000000000000 none token-timeout=9\n"
			    "#vol UUID=x none token-timeout=9\n", &r), 12345);
	CHECK_EQ(r, 0);
	unlink(tab);
	CHECK_EQ(timeout_of(cd, "", &r), 12345);
	CHECK_EQ(r, 0);
	unlink(tab);
	CHECK_EQ(token_timeout(tab, cd, &t), 0);	/* no crypttab at all */
	CHECK_EQ(t, 3);

	crypt_free(cd);
	unlink(img);
	rmdir(dir);
	return test_done();
}
