/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * In-place encryption (`kekcrypt encrypt`): a device that holds data becomes a kekcrypt
 * volume holding the same data, by libcryptsetup's LUKS2 re-encryption in "encrypt" mode.
 *
 * The data moves back by the header's size (HEADER bytes): the header takes the device's first
 * HEADER bytes, whose data libcryptsetup first copies into free space at the device's end
 * (its "moved first segment"), so the last RESERVED = 2 x HEADER bytes must be free. Offline,
 * the device is neither mapped nor mounted (libcryptsetup encrypts through its userspace
 * crypto, so no device-mapper is needed); online, see below.
 *
 *   E1  checks: not in use, no LUKS header, a filesystem that ends at least RESERVED before the
 *       device's end (ext2/3/4 sized through libext2fs; with KC_ENCRYPT_SHRINK, checked by
 *       e2fsck and shrunk by resize2fs first), or anything with force;
 *   E2  a random DEK wrapped under every KEK: nothing is written unless all succeed;
 *   E3  the header is built in a private file, STATE/encrypt-<device path>.luks2: the LUKS2
 *       format with the data at HEADER, a token and keyslot per KEK, then libcryptsetup's
 *       re-encryption metadata, whose one header write comes after it copied the device's
 *       first HEADER bytes to the free end;
 *   E4  that file is written over the device's first HEADER bytes (crypt_header_restore()),
 *       read back from the device, and removed;
 *   E5  libcryptsetup encrypts the data chunk by chunk (resilience "datashift").
 *
 * What a crash leaves, and what the next call does (the same command, or --resume):
 *   - during E1-E3: the device's data is untouched (only its free end was written); a file
 *     without re-encryption metadata is removed and the encryption starts again;
 *   - during E4: the file, complete with its metadata, is still there: it is written again;
 *   - during E5: the device's header says it all; the DEK is unwrapped through any of its
 *     tokens and the re-encryption resumes (after libcryptsetup's crash recovery).
 * The file holds what the header holds (keyslots, wrapped DEKs), never a plain DEK; it is on
 * persistent storage (/var/lib/kekcrypt) so that a power loss during E4 does not lose it. The
 * next call must name the device by the same path.
 *
 * With a detached header (kc_set_header(), FILE) nothing moves and no room is needed: the data
 * stays at offset 0 and is encrypted where it is (resilience "checksum"), the header going to
 * FILE, which must not exist yet:
 *   D1  E1 without the room check (a filesystem is still checked clean and unmounted), E2;
 *   D2  E3 in FILE.kekcrypt-new, beside FILE (the same filesystem), with the data at offset 0;
 *       created 0600, fsync'd with its directory;
 *   D3  renamed to FILE (never over an existing one), the directory fsync'd: FILE appears
 *       complete or not at all;
 *   D4  E5.
 * A crash during D1-D2 leaves the device untouched and FILE absent: an incomplete .kekcrypt-new
 * is removed and the encryption starts again, a complete one is renamed (D3); after D3, FILE
 * holds the encryption under way and the next call resumes it. A FILE holding anything else is
 * refused. Like cryptsetup's, a detached header does not name its data device: the next call
 * must name the same device.
 *
 * Online (kc_encrypt_online(), NAME): the same, then, before E5, the volume is opened as NAME
 * (its segments as libcryptsetup describes them: the part not yet encrypted maps the plain
 * data) and E5 runs through that mapping, which may be mounted and written meanwhile. DEVICE
 * must still be unmounted at the start: its filesystem cannot move under dm-crypt while it is
 * mounted. KC_ENCRYPT_REMOUNT does that: once the checks passed, DEVICE is unmounted (umount2,
 * never lazily: something using it stops the run, nothing written), and its filesystem
 * mounted again (mount(8), the same type and options) from the mapping as soon as it is open;
 * a run that fails before that mounts back the mapping, or DEVICE while it holds no LUKS
 * header (nothing written yet), or says how to open it. A crash leaves what it leaves offline; the mapping is gone after a power loss, and
 * the next call opens it again (NAME) or continues offline (none); after the process alone
 * was stopped between chunks, the mapping is still there and the next call continues through
 * it, whatever its name. A process that died in the middle of a chunk leaves the mapping on
 * libcryptsetup's helper devices with that chunk's I/O blocked, and libcryptsetup repairs a
 * chunk only on a closed volume: refused (-EBUSY), with a restart to make first.
 *
 * Test hook: KC_STATE_DIR (secure_getenv) instead of /var/lib/kekcrypt.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <blkid.h>
#include <libcryptsetup.h>

#include "dl-ext2fs.h"
#include "dl-mount.h"
#include "internal.h"

#define STATE_DIR "/var/lib/kekcrypt"
#define NEW_SUFFIX ".kekcrypt-new"
/* Detached: chunks of 8 MiB, as rekey's, so that progress and a stop come that often (the
 * checksum resilience would otherwise take as much as the keyslot area covers). */
#define DETACHED_HOTZONE (8ULL << 20)
#define HEADER KC_ENCRYPT_HEADER_BYTES
#define RESERVED KC_ENCRYPT_RESERVED_BYTES
#define MIB (1024.0 * 1024.0)

/* A mount of the device (libmount). */
struct mount_of {
	char dir[PATH_MAX];	/* the mount point */
	char type[64];		/* the filesystem type */
	char opts[1024];	/* the mount's options and the superblock's, for mount -o */
};

struct encrypt_run {
	struct kc_ctx *ctx;
	const char *device;
	const struct kc_format_params *p;
	uint32_t flags;
	kc_progress_fn fn;
	void *usrptr;
	char file[PATH_MAX];	/* the header file of E3/E4; detached: FILE.kekcrypt-new (D2) */
	bool detached;		/* the header goes to ctx->header, FILE */
	const char *name;	/* online: the mapping to open when the volume has none; NULL */
	struct kc_encrypt_result res;
	/* KC_ENCRYPT_REMOUNT: where DEVICE was mounted (mnt.dir "" when it was not), whether it
	 * was unmounted, and whether its filesystem is mounted again from the mapping */
	struct mount_of mnt;
	bool unmounted, remounted;
};

/* ---------------------------------------------------------------------------------------- */
/* E1: what the device holds                                                                */

static int device_size(struct kc_ctx *ctx, const char *device, uint64_t *r_size)
{
	int r = util_device_size(device, r_size);

	if (r == -EINVAL)
		return ctx_fail(ctx, r, "'%s' is neither a block device nor a file", device);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOENT ? r : -EIO, "device '%s': %s", device,
				strerror(-r));
	return 0;
}

/* The superblock options of a mount (SUPER, libmount's fs options) appended to OPTS, but
 * rw/ro (the mount's own say that) and seclabel (a flag the kernel shows, not an option). */
static void append_super_opts(char *opts, size_t size, const char *super)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", super);
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(opts);

		if (strcmp(o, "rw") && strcmp(o, "ro") && strcmp(o, "seclabel"))
			snprintf(opts + n, size - n, ",%s", o);
	}
}

/* How many times block device DEVICE is mounted (libmount: this process's mountinfo); the
 * first mount in *M. 0 when DEVICE is no block device; <0 when it cannot be told (a detail). */
static int device_mounts(struct kc_ctx *ctx, const char *device, struct mount_of *m)
{
	struct libmnt_table *tb = NULL;
	struct libmnt_iter *it = NULL;
	struct libmnt_fs *fs;
	struct stat st;
	int n = 0, r;

	if (stat(device, &st) < 0 || !S_ISBLK(st.st_mode))
		return 0;
	r = dl_mount_load(ctx);
	if (r < 0)
		return r;
	tb = sym_mnt_new_table_from_file("/proc/self/mountinfo");
	it = sym_mnt_new_iter(MNT_ITER_FORWARD);
	if (!tb || !it)
		r = ctx_fail(ctx, -EIO, "cannot read /proc/self/mountinfo: cannot tell whether "
			     "'%s' is mounted", device);
	while (r >= 0 && sym_mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *dir = sym_mnt_fs_get_target(fs), *type = sym_mnt_fs_get_fstype(fs),
			   *opts = sym_mnt_fs_get_vfs_options(fs),
			   *super = sym_mnt_fs_get_fs_options(fs);

		if (sym_mnt_fs_get_devno(fs) != st.st_rdev || n++)
			continue;
		if (!dir || strlen(dir) >= sizeof(m->dir) || strlen(type ?: "") >= sizeof(m->type))
			r = ctx_fail(ctx, -EIO, "device '%s' is mounted, at a path or with a type "
				     "too long to handle", device);
		snprintf(m->dir, sizeof(m->dir), "%s", dir ?: "");
		snprintf(m->type, sizeof(m->type), "%s", type ?: "");
		snprintf(m->opts, sizeof(m->opts), "%s", opts ?: "");
		if (super)
			append_super_opts(m->opts, sizeof(m->opts), super);
	}
	if (it)
		sym_mnt_free_iter(it);
	if (tb)
		sym_mnt_unref_table(tb);
	return r < 0 ? r : n;
}

/* A mounted DEVICE: refused, with the commands that encrypt it online instead; with
 * KC_ENCRYPT_REMOUNT (online), its mount kept in er->mnt, to unmount once the checks passed. */
static int check_mounted(struct encrypt_run *er)
{
	struct mount_of m = { 0 };
	const char *name = er->name ?: "NAME";
	int n = device_mounts(er->ctx, er->device, &m);

	if (n <= 0)
		return n;
	if ((er->flags & KC_ENCRYPT_REMOUNT) && n > 1)
		return ctx_fail(er->ctx, -EBUSY, "device '%s' is mounted at %d places ('%s' "
				"first): unmount it everywhere but at one place (or everywhere), "
				"then run this again", er->device, n, m.dir);
	if (er->flags & KC_ENCRYPT_REMOUNT) {
		er->mnt = m;
		if (er->flags & KC_ENCRYPT_DRY_RUN)
			snprintf(er->res.mount_point, sizeof(er->res.mount_point), "%s", m.dir);
		return 0;
	}
	return ctx_fail(er->ctx, -EBUSY, "device '%s' is mounted at '%s': a mounted filesystem "
			"cannot move under dm-crypt. Unmount it, encrypt it online and mount the "
			"mapping instead: 'umount %s; kekcrypt encrypt %s %s --kek URI...; mount "
			"/dev/mapper/%s %s' (the filesystem is usable again as soon as encrypt has "
			"opened the mapping), or let encrypt do that: 'kekcrypt encrypt %s %s "
			"--remount --kek URI...'", er->device, m.dir, m.dir, er->device, name,
			name, m.dir, er->device, name);
}

/* KC_ENCRYPT_REMOUNT, once the checks passed: DEVICE unmounted (never lazily). */
static int unmount_device(struct encrypt_run *er)
{
	if (!er->mnt.dir[0] || (er->flags & KC_ENCRYPT_DRY_RUN))
		return 0;
	if (umount2(er->mnt.dir, 0) < 0) {
		int e = errno;

		return ctx_fail(er->ctx, e == EBUSY ? -EBUSY : -e, "cannot unmount '%s' from '%s' "
				"(%s)%s", er->device, er->mnt.dir, strerror(e), e == EBUSY ?
				": something uses it ('fuser -vm' on it says what); stop that and run "
				"this again, nothing was written" : "");
	}
	er->unmounted = true;
	log_info(er->ctx, "%s: unmounted from %s", er->device, er->mnt.dir);
	return 0;
}

/* The bytes an ext2/3/4 filesystem uses, from its superblock; refuses one not clean, unless
 * MOUNTED (a dry run of KC_ENCRYPT_REMOUNT: the real run checks it once unmounted). */
static int ext_size(struct kc_ctx *ctx, const char *device, bool mounted, uint64_t *r_bytes)
{
	ext2_filsys fs = NULL;
	errcode_t e;
	int r = dl_ext2fs_load(ctx);

	if (r < 0)
		return r;
	e = sym_ext2fs_open(device, 0, 0, 0, *sym_unix_io_manager, &fs);
	if (e)
		return ctx_fail(ctx, -EIO, "device '%s': its ext filesystem cannot be read "
				"(libext2fs error %ld): run 'e2fsck -f %s'", device, (long)e, device);
	if (!mounted && (!(fs->super->s_state & EXT2_VALID_FS) ||
			 (fs->super->s_state & EXT2_ERROR_FS) ||
			 (fs->super->s_feature_incompat & EXT3_FEATURE_INCOMPAT_RECOVER)))
		r = ctx_fail(ctx, -EBUSY, "device '%s': its filesystem is mounted, was not "
			     "unmounted cleanly or has errors: unmount it and run 'e2fsck -f %s'",
			     device, device);
	else
		*r_bytes = sym_ext2fs_blocks_count(fs->super) * (uint64_t)EXT2_BLOCK_SIZE(fs->super);
	sym_ext2fs_close_free(&fs);
	return r;
}

/* Fill res.content and res.content_bytes: what libblkid finds, sized when it is ext2/3/4. */
static int probe_content(struct encrypt_run *er)
{
	const char *type = NULL, *pttype = NULL, *usage = NULL, *block = NULL;
	blkid_probe pr = blkid_new_probe_from_filename(er->device);
	unsigned long block_size = 0;
	uint32_t sector = er->p->sector_size ?: 512;
	int r;

	if (!pr)
		return ctx_fail(er->ctx, -EIO, "device '%s': cannot probe: %s", er->device,
				strerror(errno));
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	r = blkid_do_safeprobe(pr);
	if (r == 0) {
		(void)blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
		(void)blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);
		(void)blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
		if (!blkid_probe_lookup_value(pr, "BLOCK_SIZE", &block, NULL))
			block_size = strtoul(block, NULL, 10);
		snprintf(er->res.content, sizeof(er->res.content), "%s", type ?: pttype ?: "");
	}
	if (r == -2)
		r = ctx_fail(er->ctx, -EEXIST, "device '%s' holds several signatures; "
			     "refusing to guess what it holds", er->device);
	else if (r < 0)
		r = ctx_fail(er->ctx, -EIO, "device '%s': probing failed", er->device);
	else if (r == 0 && pttype)
		r = ctx_fail(er->ctx, -EEXIST, "device '%s' holds a partition table (%s): encrypt "
			     "its partitions, not the whole disk", er->device, pttype);
	else if (r == 0 && type && !strncmp(type, "crypto_LUKS", 11))
		r = ctx_fail(er->ctx, -EEXIST, "device '%s' is already a LUKS volume", er->device);
	/* dm-crypt's logical block is the encryption sector: a filesystem with smaller blocks
	 * would no longer mount from the mapping. */
	else if (r == 0 && type && block_size && block_size < sector)
		r = ctx_fail(er->ctx, -EINVAL, "device '%s': its %s filesystem has blocks of %lu "
			     "bytes, smaller than the encryption sector of %u it would then be read "
			     "through, and would not mount: use --sector-size %lu", er->device, type,
			     block_size, sector, block_size);
	else if (r == 0 && type && (!strcmp(type, "ext2") || !strcmp(type, "ext3") ||
				    !strcmp(type, "ext4")))
		r = ext_size(er->ctx, er->device, er->mnt.dir[0] && !er->unmounted,
			     &er->res.content_bytes);
	else if (!er->p->force && er->detached)
		r = ctx_fail(er->ctx, -EEXIST, "device '%s' holds %s%s: if it is not already "
			     "encrypted (the data of a volume whose header is detached), use --force",
			     er->device, type ? "a signature of type " : "nothing libblkid knows",
			     type ?: "");
	else if (!er->p->force)
		r = ctx_fail(er->ctx, -EEXIST, "device '%s' holds %s%s, whose size kekcrypt cannot "
			     "tell: make sure its last %llu MiB are free and use --force",
			     er->device, type ? "a signature of type " : "nothing libblkid knows",
			     type ?: "", RESERVED >> 20);
	else
		r = 0;
	blkid_free_probe(pr);
	return r < 0 ? r : 0;
}

/* Run the e2fsprogs tool ARGV[0] (from /usr/sbin or /sbin) on the device, its output
 * discarded: its exit status, or -1 when it cannot be run. */
static int run_tool(char *const argv[])
{
	static char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin", lc[] = "LC_ALL=C";
	char *const env[] = { path, lc, NULL };
	posix_spawn_file_actions_t fa;
	int st = -1, r;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *tool_path(const char *name, char buf[64])
{
	snprintf(buf, 64, "/usr/sbin/%s", name);
	if (access(buf, X_OK) < 0)
		snprintf(buf, 64, "/sbin/%s", name);
	return buf;
}

/* KC_ENCRYPT_SHRINK: check the ext filesystem (e2fsck -f -p: exit 0 or 1, errors fixed
 * safely), shrink it to TO bytes (resize2fs) and read its size back. */
static int shrink(struct encrypt_run *er, uint64_t to)
{
	char e2fsck[64], resize2fs[64], size[32], force[] = "-f", preen[] = "-p";
	char *const fsck_argv[] = { (char *)tool_path("e2fsck", e2fsck), force, preen,
				    (char *)er->device, NULL };
	char *const resize_argv[] = { (char *)tool_path("resize2fs", resize2fs),
				      (char *)er->device, size, NULL };
	struct stat st;
	int rc;

	snprintf(size, sizeof(size), "%lluK", (unsigned long long)(to >> 10));
	rc = run_tool(fsck_argv);
	if (rc < 0 || rc > 1)
		return ctx_fail(er->ctx, rc < 0 ? -ENOENT : -EIO, "device '%s': %s; it was not "
				"shrunk nor encrypted: run 'e2fsck -f %s' and see what it says",
				er->device, rc < 0 ? "e2fsck cannot be run (install e2fsprogs)" :
				"e2fsck -f -p found errors it cannot fix safely", er->device);
	rc = run_tool(resize_argv);
	if (rc != 0)
		return ctx_fail(er->ctx, rc < 0 ? -ENOENT : -EIO, "device '%s': resize2fs %s %s "
				"failed (%s %d); nothing was encrypted: run it by hand to see why",
				er->device, er->device, size, rc < 0 ? "cannot be run:" : "exit", rc);
	/* resize2fs also shortens an image file: give it back its size. */
	if (stat(er->device, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < er->res.device_bytes &&
	    truncate(er->device, (off_t)er->res.device_bytes) < 0)
		return ctx_fail(er->ctx, -errno, "device '%s': resize2fs shortened the file and it "
				"cannot be extended again: %s", er->device, strerror(errno));
	log_info(er->ctx, "%s: ext filesystem shrunk from %.0f to %.0f MiB", er->device,
		 (double)er->res.content_bytes / MIB, (double)to / MIB);
	return ext_size(er->ctx, er->device, false, &er->res.content_bytes);
}

static int check_room(struct encrypt_run *er)
{
	uint64_t size = er->res.device_bytes, need = er->res.content_bytes + RESERVED;
	bool ext = !strncmp(er->res.content, "ext", 3);
	int r;

	if (size < 2 * RESERVED)
		return ctx_fail(er->ctx, -ENOSPC, "device '%s' is too small (%.0f MiB) to hold "
				"a LUKS2 header and data", er->device, (double)size / MIB);
	if (need <= size)
		return 0;
	if (ext && (er->flags & KC_ENCRYPT_SHRINK)) {
		/* Whole MiB: resize2fs rounds down to its block size anyway. */
		er->res.shrunk_to_bytes = (size - RESERVED) & ~((1ULL << 20) - 1);
		if (er->flags & KC_ENCRYPT_DRY_RUN)
			return 0;
		r = shrink(er, er->res.shrunk_to_bytes);
		if (r >= 0 && er->res.content_bytes + RESERVED > size)
			r = ctx_fail(er->ctx, -ENOSPC, "device '%s': resize2fs left %.0f MiB, more "
				     "than the %.0f asked for", er->device,
				     (double)er->res.content_bytes / MIB,
				     (double)er->res.shrunk_to_bytes / MIB);
		return r;
	}
	return ctx_fail(er->ctx, -ENOSPC, "device '%s': its %s filesystem uses %.0f MiB of "
			"%.0f; encryption needs the last %llu MiB free: shrink it first to at most "
			"%llu MiB (--shrink, or 'e2fsck -f %s' then 'resize2fs %s %lluM')", er->device,
			er->res.content, (double)er->res.content_bytes / MIB, (double)size / MIB,
			RESERVED >> 20, (unsigned long long)((size - RESERVED) >> 20), er->device,
			er->device, (unsigned long long)((size - RESERVED) >> 20));
}

/* ---------------------------------------------------------------------------------------- */
/* E3, E4: the header file                                                                  */

/* STATE/encrypt-<the device's absolute path, '/' as '-'>.luks2; detached: FILE.kekcrypt-new */
static int header_file_path(struct encrypt_run *er)
{
	const char *dir = secure_getenv("KC_STATE_DIR") ?: STATE_DIR;
	_cleanup_(freep) char *abs = realpath(er->device, NULL);
	char name[NAME_MAX + 1];
	size_t n = 0;

	if (er->detached && (size_t)snprintf(er->file, sizeof(er->file), "%s" NEW_SUFFIX,
					     er->ctx->header) >= sizeof(er->file))
		return ctx_fail(er->ctx, -ENAMETOOLONG, "header file path '%s' is too long",
				er->ctx->header);
	if (er->detached)
		return 0;
	if (!abs)
		return ctx_fail(er->ctx, -errno, "device '%s': %s", er->device, strerror(errno));
	for (const char *c = abs + 1; *c && n + 1 < sizeof(name) - 16; c++)
		name[n++] = *c == '/' ? '-' : *c;
	name[n] = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ctx_fail(er->ctx, -errno, "cannot create '%s': %s", dir, strerror(errno));
	if ((size_t)snprintf(er->file, sizeof(er->file), "%s/encrypt-%s.luks2", dir, name) >=
	    sizeof(er->file))
		return ctx_fail(er->ctx, -ENAMETOOLONG, "device path '%s' is too long", abs);
	return 0;
}

/* The state of the in-place encryption that the LUKS2 header in PATH holds;
 * CRYPT_REENCRYPT_NONE for anything else (no header, no re-encryption or another kind). */
static crypt_reencrypt_info encryption_state(const char *path)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct crypt_params_reencrypt p = { 0 };
	crypt_reencrypt_info ri;

	if (crypt_init(&cd, path) < 0 || crypt_load(cd, CRYPT_LUKS2, NULL) < 0)
		return CRYPT_REENCRYPT_NONE;
	ri = crypt_reencrypt_status(cd, &p);
	return ri != CRYPT_REENCRYPT_INVALID && p.mode == CRYPT_REENCRYPT_ENCRYPT ? ri :
	       CRYPT_REENCRYPT_NONE;
}

/* 1 when the file of E3 holds a header whose re-encryption began (E3 complete), 0 when not. */
static int header_file_complete(struct encrypt_run *er)
{
	return encryption_state(er->file) == CRYPT_REENCRYPT_CLEAN;
}

/* fsync the directory holding FILE (a relative name without '/' is in "."). */
static int sync_dir_of(const char *file)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, r = 0;

	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* D3: the complete FILE.kekcrypt-new becomes FILE, never replacing one. */
static int header_file_rename(struct encrypt_run *er)
{
	if (renameat2(AT_FDCWD, er->file, AT_FDCWD, er->ctx->header, RENAME_NOREPLACE) < 0)
		return ctx_fail(er->ctx, errno == EEXIST ? -EEXIST : -EIO, "cannot rename '%s' to "
				"'%s': %s", er->file, er->ctx->header, strerror(errno));
	if (sync_dir_of(er->ctx->header) < 0)
		return ctx_fail(er->ctx, -EIO, "header file '%s': cannot sync its directory",
				er->ctx->header);
	util_crash_point();
	return 0;
}

/* E4: the header file onto the device, read back, then the file removed; detached: D3. */
static int header_file_install(struct encrypt_run *er)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (er->detached)
		return header_file_rename(er);
	r = vol_init(er->ctx, er->device, &cd);
	if (r < 0)
		return r;
	r = crypt_header_restore(cd, CRYPT_LUKS2, er->file);
	util_crash_point();
	if (r >= 0)
		r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r < 0)
		return ctx_fail(er->ctx, -EIO, "cannot write the header onto '%s' (%s); it is kept "
				"in '%s': run 'kekcrypt encrypt --resume %s' again", er->device,
				strerror(-r), er->file, er->device);
	if (unlink(er->file) < 0)
		return ctx_fail(er->ctx, -errno, "cannot remove '%s': %s", er->file,
				strerror(errno));
	(void)sync_dir_of(er->file);
	util_crash_point();
	return 0;
}

/* E3 (D2): format, tokens and re-encryption metadata in the header file. */
static int header_file_build(struct encrypt_run *er, const struct kc_secret *dek,
			     const struct format_keks *fk)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	_cleanup_(closep) int fd = -1;
	struct crypt_params_luks2 l = { .sector_size = er->p->sector_size ?: 512,
					.label = er->p->label };
	/* Detached: nothing moves, each chunk is protected by checksums in the header's
	 * keyslot area (cryptsetup reencrypt --encrypt --header's defaults). */
	struct crypt_params_reencrypt rp = {
		.mode = CRYPT_REENCRYPT_ENCRYPT, .hash = "sha256", .luks2 = &l,
		.direction = er->detached ? CRYPT_REENCRYPT_FORWARD : CRYPT_REENCRYPT_BACKWARD,
		.resilience = er->detached ? "checksum" : "datashift",
		.data_shift = er->detached ? 0 : HEADER / 512,
		.flags = CRYPT_REENCRYPT_INITIALIZE_ONLY |
			 (er->detached ? 0 : CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT),
	};
	char cipher[32], mode[32];
	int r, slot;

	r = format_split_cipher(er->ctx, er->p->cipher ?: FORMAT_DEFAULT_CIPHER, cipher, mode);
	if (r < 0)
		return r;
	fd = open(er->file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, 4096) != 0)
		return ctx_fail(er->ctx, -EIO, "cannot create '%s': %s", er->file,
				strerror(errno));
	r = crypt_init_data_device(&cd, er->file, er->device);
	if (r < 0)
		return ctx_fail(er->ctx, -EIO, "device '%s': cannot be used (%s)", er->device,
				strerror(-r));
	luks_log_to(er->ctx, cd);
	r = luks_minimal_pbkdf(er->ctx, cd);
	/* Detached: the data stays at offset 0, libcryptsetup's default with a header file. */
	if (r >= 0 && !er->detached)
		r = crypt_set_data_offset(cd, HEADER / 512);
	if (r >= 0)
		r = crypt_format(cd, CRYPT_LUKS2, cipher, mode, er->p->uuid,
				 (const char *)dek->data, dek->len, &l);
	if (r < 0)
		return ctx_fail(er->ctx, r == -ENOMEM ? r : -EINVAL, "device '%s': LUKS2 format "
				"failed (%s); check cipher, key size, sector size and UUID",
				er->device, strerror(-r));
	r = format_add_tokens(er->ctx, cd, fk, dek);
	if (r < 0)
		return r;
	slot = luks_token_slot(cd, luks_token_next(cd, -1, TOKEN_TYPE));
	r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
	if (r < 0)
		return r;
	r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)pass->data, pass->len,
					       CRYPT_ANY_SLOT, slot, cipher, mode, &rp);
	if (r < 0)
		return ctx_fail(er->ctx, r == -ENOMEM ? r : -EIO, "device '%s': cannot start the "
				"encryption (%s)", er->device, strerror(-r));
	if (fsync(fd) < 0)
		return ctx_fail(er->ctx, -EIO, "cannot write '%s': %s", er->file, strerror(errno));
	(void)sync_dir_of(er->file);
	snprintf(er->res.uuid, sizeof(er->res.uuid), "%s", crypt_get_uuid(cd));
	util_crash_point();
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* E5: the data                                                                             */

struct progress {
	kc_progress_fn fn;
	void *usrptr;
};

static int progress_cb(uint64_t size, uint64_t offset, void *usrptr)
{
	struct progress *ps = usrptr;

	return ps->fn && ps->fn(offset, size, ps->usrptr) ? 1 : 0;
}

/* A chunk interrupted by a crash (CRYPT_REENCRYPT_CRASH) repaired by libcryptsetup; *R_RI the
 * state after it (NONE when it was the last chunk). */
static int recover(struct encrypt_run *er, struct crypt_device *cd, const struct kc_secret *pass,
		   crypt_reencrypt_info *r_ri)
{
	struct crypt_params_reencrypt rec = { .flags = CRYPT_REENCRYPT_RECOVERY };
	int r;

	*r_ri = crypt_reencrypt_status(cd, NULL);
	if (*r_ri != CRYPT_REENCRYPT_CRASH)
		return 0;
	/* Only on a volume nothing holds: here the process that ran the encryption online died
	 * in the middle of a chunk, its mapping left on libcryptsetup's helper devices. */
	if (er->res.name[0])
		return ctx_fail(er->ctx, -EBUSY, "device '%s': its encryption was interrupted in "
				"the middle of a chunk while open as '%s' (the process running it "
				"died); libcryptsetup repairs that chunk only with the volume closed, "
				"and the chunk's I/O stays blocked until then: restart the machine "
				"(the mapping is gone then, as after a power loss) and run 'kekcrypt "
				"encrypt --resume %s %s'", er->device, er->res.name, er->device,
				er->res.name);
	log_dbg(er->ctx, "interrupted encryption chunk: running crash recovery");
	r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)pass->data, pass->len,
					       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &rec);
	if (r < 0)
		return ctx_fail(er->ctx, -EIO, "encryption crash recovery failed (%s)",
				strerror(-r));
	*r_ri = crypt_reencrypt_status(cd, NULL);
	return 0;
}

/* Online without a mapping yet: open the volume as er->name. By its keyslot passphrase, the
 * way libcryptsetup opens a volume whose re-encryption is under way (the encrypted part and
 * the plain part mapped as its metadata says, a chunk interrupted by a crash recovered). */
static int open_mapping(struct encrypt_run *er, struct crypt_device *cd,
			const struct kc_secret *pass)
{
	int r;

	if (er->res.name[0] || !er->name)
		return 0;
	r = crypt_activate_by_passphrase(cd, er->name, CRYPT_ANY_SLOT, (const char *)pass->data,
					 pass->len, 0);
	if (r < 0)
		return ctx_fail(er->ctx, r == -ENOMEM || r == -EBUSY ? r : -EIO, "cannot open "
				"'%s' as '%s' (%s); the encryption is resumable: 'kekcrypt encrypt "
				"--resume %s %s'", er->device, er->name, strerror(-r), er->device,
				er->name);
	snprintf(er->res.name, sizeof(er->res.name), "%s", er->name);
	log_info(er->ctx, "%s: open as /dev/mapper/%s, usable while the data is encrypted",
		 er->device, er->name);
	return 0;
}

/* KC_ENCRYPT_REMOUNT: SOURCE mounted where DEVICE was, with its type and options, by libmount
 * as mount(8) would (loaded by the check that found the mount). 0, or -1 with libmount's
 * account of the failure in ERR. */
static int mount_fs(const struct encrypt_run *er, const char *source, char *err, size_t size)
{
	struct libmnt_context *cx = sym_mnt_new_context();
	int rc;

	if (!cx) {
		snprintf(err, size, "out of memory");
		return -1;
	}
	rc = sym_mnt_context_set_source(cx, source);
	if (!rc)
		rc = sym_mnt_context_set_target(cx, er->mnt.dir);
	if (!rc)
		rc = sym_mnt_context_set_fstype(cx, er->mnt.type);
	if (!rc)
		rc = sym_mnt_context_set_options(cx, er->mnt.opts);
	if (!rc)
		rc = sym_mnt_context_mount(cx);
	err[0] = '\0';
	rc = sym_mnt_context_get_excode(cx, rc, err, size) == MNT_EX_SUCCESS ? 0 : -1;
	if (rc && !err[0])
		snprintf(err, size, "mount failed");
	sym_mnt_free_context(cx);
	return rc;
}

/* KC_ENCRYPT_REMOUNT, the volume open: its filesystem mounted again, from the mapping. A
 * failure does not stop the encryption: it is said, with the command to run. */
static void remount(struct encrypt_run *er)
{
	char source[PATH_MAX], err[256];

	if (!er->unmounted || er->remounted)
		return;
	snprintf(source, sizeof(source), "/dev/mapper/%s", er->res.name);
	if (mount_fs(er, source, err, sizeof(err))) {
		log_warn(er->ctx, "%s: cannot mount %s at %s (%s): mount it yourself ('mount %s "
			 "%s'); the encryption goes on", er->device, source, er->mnt.dir, err,
			 source, er->mnt.dir);
		return;
	}
	er->remounted = true;
	snprintf(er->res.mount_point, sizeof(er->res.mount_point), "%s", er->mnt.dir);
	log_info(er->ctx, "%s: %s mounted at %s (%s)", er->device, source, er->mnt.dir,
		 er->mnt.opts);
}

/* KC_ENCRYPT_REMOUNT, the run failed before the filesystem was mounted from the mapping: mount
 * back what holds it (the mapping, if open; DEVICE, if it holds no LUKS header yet: nothing
 * was written), or say what to run. */
static void restore_mount(struct encrypt_run *er)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	char source[PATH_MAX], err[256];
	bool luks;

	if (!er->unmounted || er->remounted)
		return;
	luks = crypt_init(&cd, er->device) >= 0 && crypt_load(cd, CRYPT_LUKS, NULL) >= 0;
	if (er->res.name[0])
		snprintf(source, sizeof(source), "/dev/mapper/%s", er->res.name);
	else if (!luks)
		snprintf(source, sizeof(source), "%s", er->device);
	else {
		log_warn(er->ctx, "%s stays unmounted from %s: its encryption has begun; 'kekcrypt "
			 "encrypt --resume %s %s' opens it as /dev/mapper/%s (then mount that)",
			 er->device, er->mnt.dir, er->device, er->name, er->name);
		return;
	}
	if (mount_fs(er, source, err, sizeof(err)))
		log_warn(er->ctx, "%s: cannot mount %s at %s again (%s): mount it yourself",
			 er->device, source, er->mnt.dir, err);
	else
		log_info(er->ctx, "%s: %s mounted at %s again", er->device, source,
			 er->mnt.dir);
}

static int run_data(struct encrypt_run *er)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *pass = NULL;
	struct crypt_params_reencrypt rp = {
		.flags = CRYPT_REENCRYPT_RESUME_ONLY,
		.max_hotzone_size = er->detached ? DETACHED_HOTZONE / 512 : 0,
	};
	struct progress ps = { er->fn, er->usrptr };
	crypt_reencrypt_info ri;
	int r = vol_load(er->ctx, er->device, &cd);

	if (r < 0)
		return r;
	snprintf(er->res.uuid, sizeof(er->res.uuid), "%s", crypt_get_uuid(cd));
	ctx_deadline_start(er->ctx, 0);
	r = vol_unlock(er->ctx, cd, er->device, -1, &dek, NULL);
	ctx_deadline_end(er->ctx);
	if (r >= 0)
		r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
	if (r < 0)
		return r;
	r = recover(er, cd, pass, &ri);
	if (r < 0)
		return r;
	r = open_mapping(er, cd, pass);
	if (r >= 0)
		remount(er);
	/* The chunk the recovery repaired may have been the last one: nothing left to do. */
	if (r < 0 || ri == CRYPT_REENCRYPT_NONE)
		return r;
	r = crypt_reencrypt_init_by_passphrase(cd, er->res.name[0] ? er->res.name : NULL,
					       (const char *)pass->data, pass->len,
					       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &rp);
	if (r >= 0)
		r = crypt_reencrypt_run(cd, progress_cb, &ps);
	if (r < 0)
		return ctx_fail(er->ctx, r == -ENOMEM ? r : -EIO, "encryption failed (%s); run "
				"'kekcrypt encrypt --resume %s' to continue it", strerror(-r),
				er->device);
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
		return ctx_fail(er->ctx, -ECANCELED, "encryption stopped; run 'kekcrypt encrypt "
				"--resume %s' to continue it", er->device);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The operation                                                                            */

/* 1 when DEVICE's own header holds an encryption under way, 0 when it has no LUKS2 header;
 * -EEXIST for any other LUKS2 volume. */
static int device_encrypting(struct encrypt_run *er)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct crypt_params_reencrypt p;
	crypt_reencrypt_info ri;

	if (crypt_init(&cd, er->device) < 0 || crypt_load(cd, CRYPT_LUKS2, NULL) < 0)
		return 0;
	ri = crypt_reencrypt_status(cd, &p);
	if (ri != CRYPT_REENCRYPT_NONE && ri != CRYPT_REENCRYPT_INVALID &&
	    p.mode == CRYPT_REENCRYPT_ENCRYPT)
		return 1;
	if (er->flags & KC_ENCRYPT_RESUME)
		return ctx_fail(er->ctx, -ENOENT, "device '%s' has no interrupted encryption to "
				"resume (it is a LUKS volume)", er->device);
	return ctx_fail(er->ctx, -EEXIST, "device '%s' is already a LUKS volume%s", er->device,
			ri != CRYPT_REENCRYPT_NONE ? " (with a re-encryption under way: "
			"'kekcrypt rekey --resume')" : "");
}

/* Detached: 1 when FILE holds an interrupted encryption, 0 when there is no FILE; -EEXIST
 * for anything else there (encrypt makes a new header, it overwrites nothing). */
static int header_existing(struct encrypt_run *er)
{
	const char *hdr = er->ctx->header;

	if (access(hdr, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (encryption_state(hdr) != CRYPT_REENCRYPT_NONE)
		return 1;
	return ctx_fail(er->ctx, -EEXIST, "header file '%s' already exists and holds no "
			"interrupted encryption: encrypt creates the header file, name a new one",
			hdr);
}

/* A fresh start: E1 done by the caller; E2, E3, E4 (detached: D2, D3). */
static int start(struct encrypt_run *er)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	struct format_keks fk = { 0 };
	int r = format_new_dek(er->ctx, er->p, &dek);

	if (r >= 0) {
		ctx_deadline_start(er->ctx, 0);
		r = format_wrap_all(er->ctx, er->p, dek, &fk);
		ctx_deadline_end(er->ctx);
	}
	if (r >= 0)
		r = header_file_build(er, dek, &fk);
	format_keks_clear(&fk);
	if (r < 0) {
		/* Nothing of the device was written but its free end: start again next time. */
		if (er->file[0] && !header_file_complete(er))
			(void)unlink(er->file);
		return r;
	}
	return header_file_install(er);
}

static int encrypt_locked(struct encrypt_run *er)
{
	struct stat st;
	int r = header_file_path(er);

	if (r < 0)
		return r;
	/* E4 (D3) interrupted: write (rename) the file again. An incomplete one (E3 or D2
	 * interrupted) goes. */
	if (stat(er->file, &st) == 0) {
		if (header_file_complete(er)) {
			log_info(er->ctx, "%s: writing the header kept in '%s' (an earlier run was "
				 "interrupted)", er->device, er->file);
			er->res.resumed = true;
			return (er->flags & KC_ENCRYPT_DRY_RUN) ? 0 : header_file_install(er);
		}
		log_dbg(er->ctx, "removing '%s', left by a run interrupted before it began",
			er->file);
		if (!(er->flags & KC_ENCRYPT_DRY_RUN) && unlink(er->file) < 0)
			return ctx_fail(er->ctx, -errno, "cannot remove '%s': %s", er->file,
					strerror(errno));
	}
	r = er->detached ? header_existing(er) : device_encrypting(er);
	if (r != 0) {
		er->res.resumed = r > 0;
		return r < 0 ? r : 0;
	}
	if (er->flags & KC_ENCRYPT_RESUME)
		return ctx_fail(er->ctx, -ENOENT, "device '%s' has no interrupted encryption to "
				"resume", er->device);
	r = probe_content(er);
	if (r >= 0 && !er->detached)
		r = check_room(er);
	if (r < 0 || (er->flags & KC_ENCRYPT_DRY_RUN))
		return r;
	return start(er);
}

/* DEVICE's own mapping, when its header (on it, or the detached one once it exists) is a
 * LUKS2 one and it is open: its name in res.name. */
static void find_own_mapping(struct encrypt_run *er)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct stat st;

	if (er->detached && stat(er->ctx->header, &st) < 0)
		return;
	if (vol_crypt_init(er->ctx, er->device, &cd) >= 0 && crypt_load(cd, CRYPT_LUKS2, NULL) >= 0)
		(void)dm_find_mapping(er->ctx, er->device, crypt_get_uuid(cd), er->res.name);
}

/* Online checks before anything is written: device-mapper, the name free (unless it is the
 * volume's own mapping). */
static int check_online(struct encrypt_run *er)
{
	int r;

	if (!er->name)
		return 0;
	r = dm_check_name(er->ctx, er->name);
	if (r >= 0)
		r = dm_available(er->ctx);
	if (r >= 0 && strcmp(er->res.name, er->name) && dm_mapping_state(er->name))
		r = ctx_fail(er->ctx, -EEXIST, "a mapping named '%s' already exists", er->name);
	return r;
}

static int encrypt_device(struct kc_ctx *ctx, const char *device, const char *name,
			  const struct kc_format_params *params, uint32_t flags, kc_progress_fn fn,
			  void *usrptr, struct kc_encrypt_result *r_result)
{
	_cleanup_(vol_unlockp) int lock = -1, header_lock = -1;
	struct kc_format_params full;
	bool detached = ctx && ctx->header;
	struct encrypt_run er = {
		.ctx = ctx, .device = device, .p = &full, .flags = flags, .fn = fn,
		.usrptr = usrptr, .detached = detached, .name = name,
		.res = { .size = sizeof(er.res), .header_bytes = detached ? 0 : HEADER,
			 .reserved_bytes = detached ? 0 : RESERVED },
	};
	int r = 0;

	if (!ctx || !device || !params || (flags & ~(uint32_t)(KC_ENCRYPT_RESUME |
							      KC_ENCRYPT_DRY_RUN |
							      KC_ENCRYPT_SHRINK |
							      KC_ENCRYPT_REMOUNT)) ||
	    ((flags & KC_ENCRYPT_REMOUNT) && !name) ||
	    (detached && (flags & KC_ENCRYPT_SHRINK)) ||
	    !sized_ok(params, SIZED_V1(struct kc_format_params, force)) ||
	    !sized_ok(r_result, SIZED_V1(struct kc_encrypt_result, uuid)))
		return -EINVAL;
	sized_get(&full, sizeof(full), params);
	ctx_detail_clear(ctx);
	if (!((flags & KC_ENCRYPT_RESUME) && !full.n_keks))
		r = format_check_params(ctx, device, &full);
	if (r >= 0)
		r = device_size(ctx, device, &er.res.device_bytes);
	if (r >= 0)
		find_own_mapping(&er);
	if (r >= 0 && !er.res.name[0])
		r = check_mounted(&er);
	if (r >= 0)
		r = check_online(&er);
	if (r >= 0)
		r = unmount_device(&er);
	/* Exclusive unless the volume's mapping holds the device (an online run to resume) or,
	 * in a dry run of KC_ENCRYPT_REMOUNT, its filesystem (the real run unmounts it first). */
	if (r >= 0)
		r = vol_check_writable(ctx, device,
				       !er.res.name[0] && !(er.mnt.dir[0] && !er.unmounted));
	/* The device's lock: a detached header may not exist yet. */
	if (r >= 0)
		r = vol_lock_path(ctx, device, &lock);
	if (r >= 0)
		r = encrypt_locked(&er);
	/* And from D3 on, FILE's, which the other writers take. */
	if (r >= 0 && detached && !(flags & KC_ENCRYPT_DRY_RUN))
		r = vol_lock(ctx, device, &header_lock);
	/* E5, for a fresh start and every kind of resume alike. */
	if (r >= 0 && !(flags & KC_ENCRYPT_DRY_RUN))
		r = run_data(&er);
	if (r < 0) {
		restore_mount(&er);
		ctx_detail_device(ctx, device);
		return r;
	}
	if ((flags & KC_ENCRYPT_DRY_RUN) && !er.res.name[0] && name)
		snprintf(er.res.name, sizeof(er.res.name), "%s", name);
	log_dbg(ctx, "device '%s': encrypted in place%s%s%s", device,
		er.res.resumed ? " (resumed)" : "", er.res.name[0] ? ", online through " : "",
		er.res.name);
	sized_put(r_result, &er.res, sizeof(er.res));
	return 0;
}

int kc_encrypt_online(struct kc_ctx *ctx, const char *device, const char *name,
		      const struct kc_format_params *params, uint32_t flags, kc_progress_fn fn,
		      void *usrptr, struct kc_encrypt_result *r_result)
{
	struct audit a;

	if (flags & KC_ENCRYPT_DRY_RUN)
		return encrypt_device(ctx, device, name, params, flags, fn, usrptr, r_result);
	audit_begin(ctx, &a, "encrypt", device);
	if (name)
		audit_field(ctx, "name", name);
	return audit_end(ctx, &a, encrypt_device(ctx, device, name, params, flags, fn, usrptr,
						 r_result));
}

int kc_encrypt(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params,
	       uint32_t flags, kc_progress_fn fn, void *usrptr,
	       struct kc_encrypt_result *r_result)
{
	return kc_encrypt_online(ctx, device, NULL, params, flags, fn, usrptr, r_result);
}
