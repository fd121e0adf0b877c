/*
 * gpupv-prep.h - public interface of libgpupv-prep, the library behind the
 * gpupv-prep tool that prepares Windows guest disks for Hyper-V GPU
 * paravirtualization offline.
 *
 * Only our own types appear here: no ntfs-3g, hivex or libvhdi type leaks
 * out.  Every function returns 0 (or a pointer) on success and -1 (or NULL)
 * with errno set on failure; gp_error_message() then holds one message that
 * names the object and the reason, and gp_error_code() a GP_EXIT_* class.
 */
#ifndef GPUPV_PREP_H
#define GPUPV_PREP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes of the tool; also the class of a recorded error. */
enum gp_exit {
	GP_EXIT_OK = 0,
	GP_EXIT_FAILURE = 1,	/* any other failure */
	GP_EXIT_USAGE = 2,	/* bad command line */
	GP_EXIT_CORRUPT = 3,	/* image or structure corrupt or unsupported */
	GP_EXIT_NO_WINDOWS = 4,	/* no Windows volume found */
	GP_EXIT_HIBERNATED = 5,	/* NTFS volume hibernated / Fast Startup */
	GP_EXIT_UNCLEAN = 6,	/* NTFS journal unclean or volume dirty */
	GP_EXIT_BITLOCKER = 7,	/* BitLocker-encrypted volume */
	GP_EXIT_BUSY = 8,	/* image in use by another process */
	GP_EXIT_PARENT = 9,	/* differencing parent missing or mismatched */
	GP_EXIT_INPUT = 10,	/* bad input file: package, INF, .reg, bundle */
};

#define GP_ERROR_MAX 1024

/*
 * One recorded error: the message, its GP_EXIT_* class and errno.  A
 * caller that tolerates a failure opens a scope of its own around the
 * attempt (error_try/error_end inside the library), so what fails there
 * is recorded in its scope and never in, nor over, anyone else's.
 */
struct gp_error {
	bool	set;
	int	code;			/* GP_EXIT_* */
	int	err;			/* errno of the cause */
	char	msg[GP_ERROR_MAX];
	struct gp_error *outer;		/* the scope this one is inside */
};

/* The error of the calling thread's current scope: what the last failed
 * call recorded.  gp_error_clear() is for a top-level caller (the CLI, a
 * test) that goes on to another operation in the same scope. */
const char *gp_error_message(void);	/* its message, or "" */
int	gp_error_code(void);		/* its GP_EXIT_* class */
void	gp_error_clear(void);
/* Non-fatal warnings recorded since the last call; caller frees none. */
size_t	gp_warnings(const char *const **list);
void	gp_warnings_clear(void);

const char *gp_version(void);

/* ---- images (blk layer) ------------------------------------------- */

typedef struct gp_image gp_image;

enum gp_open_flags {
	GP_OPEN_RDONLY = 0,
	GP_OPEN_RDWR = 1 << 0,
	GP_OPEN_DRY_RUN = 1 << 1,	/* writable view; the file never changes */
	GP_OPEN_NO_PARENT = 1 << 2,	/* a differencing image alone: its own
					   facts; reads that need the parent
					   fail */
};

struct gp_open_opts {
	unsigned flags;			/* GP_OPEN_* */
	const char *parent;		/* differencing parent override */
	const char *format;		/* force "raw", "vhd", "vhdx"; NULL probes */
};

struct gp_image_info {
	const char *path;
	const char *format;		/* "vhdx", "vhd", "raw" */
	const char *subformat;		/* "fixed", "dynamic", "differencing", NULL */
	uint64_t virtual_size;		/* bytes */
	uint64_t file_size;		/* bytes on the host */
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	uint32_t block_size;		/* 0 for raw and fixed VHD */
	const char *parent;		/* resolved parent path, or NULL */
	const char *parent_hint;	/* path the file names, or NULL */
	bool log_replayed;		/* a VHDX log was replayed on open */
	bool journal_replayed;		/* a sidecar journal was completed */
	char disk_id[39];		/* VHDX Page 83 id / VHD unique id, or "" */
	char creator[64];		/* creator string, or "" */
};

gp_image *gp_image_open(const char *path, const struct gp_open_opts *opts);
/* The differencing images beside path that name it as their parent:
 * fn for each; returns how many. */
int	gp_image_children(const char *path, void (*fn)(void *ctx,
	    const char *child), void *ctx);
int	gp_image_get_info(const gp_image *img, struct gp_image_info *info);
const gp_image *gp_image_parent(const gp_image *img);
/* Virtual disk I/O; any offset and length inside the virtual size. */
int	gp_image_read(gp_image *img, void *buf, size_t len, uint64_t off);
int	gp_image_write(gp_image *img, const void *buf, size_t len, uint64_t off);
int	gp_image_flush(gp_image *img);
/*
 * Whether the image file stores the virtual bytes [off, off+len): 1 when
 * it does (writing there does not grow a dynamic image), 0 when they read
 * from a parent or as zeros; *pnum is the length from off with the same
 * answer.  -1 on error.
 */
int	gp_image_block_status(gp_image *img, uint64_t off, uint64_t len,
	    uint64_t *pnum);
/* The same over the whole chain: 1 when this file or a parent holds the
 * bytes (they may be other than zeros), 0 when they read as zeros. */
int	gp_image_allocated(gp_image *img, uint64_t off, uint64_t len,
	    uint64_t *pnum);
/*
 * Compaction.  gp_image_discard forgets the blocks wholly inside [off,
 * off+len), whose contents no longer matter (a raw file or fixed VHD gets
 * holes instead); gp_image_compact then commits, packs the blocks the
 * file holds toward its start, commits again and cuts the file after the
 * last structure it references.  Each step leaves a valid image.
 */
int	gp_image_discard(gp_image *img, uint64_t off, uint64_t len);
int	gp_image_compact(gp_image *img);

/*
 * A writable image is changed in one session.  Writes are seen by later
 * reads at once, but reach the image's committed state only through
 * gp_image_commit, which is atomic: after a crash the image holds the old
 * state or the new one (VHDX through its own log, raw and VHD through a
 * sidecar journal IMAGE.gpupv-journal that the next open completes).
 * After a commit the session goes on from the new state.  In a dry run
 * (GP_OPEN_DRY_RUN) commit succeeds and nothing is written.
 */
int	gp_image_commit(gp_image *img);
/* Forget the changes since the last commit; the image is unusable after. */
int	gp_image_abort(gp_image *img);
bool	gp_image_dry_run(const gp_image *img);
uint64_t gp_image_pending(const gp_image *img);	/* bytes held for commit */
/*
 * Declare a map of units units of unit bytes from start, all unused until
 * gp_image_map_used marks them; then mark which ones the committed state
 * uses, in pieces (bit set = in use; bit i of byte i/8, LSB first; first
 * a multiple of 8).  Writes wholly inside unused units go straight to the
 * file, bypassing the overlay.  The map takes memory in proportion to the
 * mixed stretches, not to the volume; a commit drops it.
 */
int	gp_image_set_unused_map(gp_image *img, uint64_t start, uint64_t unit,
	    uint64_t units);
int	gp_image_map_used(gp_image *img, uint64_t first, const uint8_t *in_use,
	    uint64_t n);
/* Closes; changes not committed are discarded. */
int	gp_image_close(gp_image *img);

/*
 * Create a new, empty image (never over an existing file): a dynamic or
 * fixed VHDX, a dynamic VHD, a sparse raw file, or, with parent set, a
 * differencing VHDX child of that VHDX (its virtual size, sector sizes
 * and DataWriteGuid as parent linkage; the parent named relative to the
 * child's folder and by absolute path).
 */
struct gp_create_opts {
	const char *format;		/* "vhdx" (default), "vhdx-fixed",
					   "vhd", "raw" */
	uint64_t virtual_size;
	uint32_t block_size;		/* 0: the format's default */
	uint32_t logical_sector_size;	/* 0: 512 */
	uint32_t physical_sector_size;	/* 0: 4096 */
	const gp_image *parent;		/* differencing child of this */
	/* Where the parent will live on the Windows host ("D:\\VMs\\x.vhdx"),
	 * recorded as its absolute_win32_path; NULL: only the relative
	 * path is recorded. */
	const char *parent_windows_path;
};
int	gp_image_create(const char *path, const struct gp_create_opts *o);

/* ---- partitions (part layer) -------------------------------------- */

enum gp_part_scheme { GP_SCHEME_NONE, GP_SCHEME_MBR, GP_SCHEME_GPT };

struct gp_partition {
	unsigned index;			/* 1-based as the table numbers it */
	uint64_t start;			/* bytes */
	uint64_t size;			/* bytes */
	char type[40];			/* GPT type GUID, or "0x07" for MBR */
	const char *type_name;		/* "Microsoft basic data", ... or NULL */
	char name[80];			/* GPT partition name (UTF-8), or "" */
	const char *filesystem;		/* "ntfs", "fat", "bitlocker", ..., "unknown" */
	char label[128];		/* filesystem label, or "" */
};

struct gp_partition_table {
	enum gp_part_scheme scheme;
	uint32_t sector_size;
	unsigned count;
	struct gp_partition *parts;
	char disk_guid[39];		/* GPT disk GUID, or "" */
	uint32_t mbr_signature;
};

int	gp_partitions_read(gp_image *img, struct gp_partition_table *pt);
void	gp_partitions_free(struct gp_partition_table *pt);

/* ---- guest file systems (fs layer: NTFS or ext2/3/4) -------------- */

typedef struct gp_volume gp_volume;

enum gp_fs_kind {
	GP_FS_NTFS,
	GP_FS_EXT,			/* ext2, ext3 or ext4 */
};

enum gp_volume_state {
	GP_VOL_CLEAN,
	GP_VOL_HIBERNATED,
	GP_VOL_DIRTY,
	GP_VOL_BITLOCKER,
};
const char *gp_volume_state_name(enum gp_volume_state s);

/*
 * Open the file system in [start, start+size) of img: NTFS, or ext2/3/4
 * (found by its signature).  A writable volume changes only the image's
 * session (gp_image_commit makes it stick).
 */
gp_volume *gp_volume_open(gp_image *img, uint64_t start, uint64_t size,
	    bool writable);
enum gp_fs_kind gp_volume_kind(const gp_volume *vol);
/* "ntfs", "ext2", "ext3" or "ext4". */
const char *gp_volume_fs_name(gp_volume *vol);
int	gp_volume_close(gp_volume *vol);
/* State as judged read-only: hibernation, dirty flag, journal. */
enum gp_volume_state gp_volume_state(gp_volume *vol);
const char *gp_volume_label(gp_volume *vol);

struct gp_stat {
	bool is_dir;
	uint64_t size;
	uint32_t attributes;		/* FILE_ATTRIBUTE_* as Windows has them */
	int64_t mtime;			/* Unix seconds */
	bool is_link;			/* ext: a symbolic link; NTFS: a
					   reparse point (junction, link) */
	uint32_t mode;			/* ext: permission bits */
};

/* Paths use '/' or '\\'; NTFS matches them case-insensitively, ext
 * exactly. */
int	gp_volume_stat(gp_volume *vol, const char *path, struct gp_stat *st);
/* 1 when path exists (*st filled), 0 when it does not (errno ENOENT or
 * ENOTDIR; nothing recorded), -1 when it cannot be told (an error). */
int	gp_volume_exists(gp_volume *vol, const char *path, struct gp_stat *st);
/*
 * Calls fn for each entry of a directory (Win32/POSIX names only, no
 * DOS 8.3 aliases, no "." and "..").  fn returns non-zero to stop.
 */
int	gp_volume_list(gp_volume *vol, const char *path,
	    int (*fn)(void *ctx, const char *name, const struct gp_stat *st),
	    void *ctx);
/* Copy a file of the volume into a host file (created or truncated). */
int	gp_volume_extract(gp_volume *vol, const char *path, const char *host_path);
/* The actual case of each component, e.g. "/Windows/System32". */
char	*gp_volume_realpath(gp_volume *vol, const char *path);
/* Create missing directories along path (case-insensitively). */
int	gp_volume_mkdir_p(gp_volume *vol, const char *path);
/* Create or replace a file with the given contents. */
int	gp_volume_write_file(gp_volume *vol, const char *path,
	    const void *data, size_t len);

/* Replace the contents of an existing file in place (its security,
 * names and creation time stay). */
int	gp_volume_overwrite(gp_volume *vol, const char *path,
	    const void *data, size_t len);

/* What a staged entry carries over from the host. */
struct gp_file_meta {
	int64_t mtime_ns;		/* Unix epoch, nanoseconds */
	int64_t crtime_ns;		/* 0: same as mtime */
	bool readonly;			/* FILE_ATTRIBUTE_READONLY */
	uint32_t mode;			/* ext: permission bits (owner root);
					   0: 0644 for files, 0755 folders */
};
/*
 * Create a new file or directory at path (the parent must exist; an
 * existing entry is an error, EEXIST).  It gets the security descriptor
 * Windows would inherit from the parent (a shared id in $Secure), the
 * times and attributes of m, and an 8.3 alias when the volume makes them
 * (gp_volume_short_names).  A file's size clusters are allocated first,
 * then fill is called for consecutive pieces of its contents.
 */
int	gp_volume_create(gp_volume *vol, const char *path, bool is_dir,
	    uint64_t size, const struct gp_file_meta *m,
	    int (*fill)(void *ctx, void *buf, size_t len), void *ctx);
int	gp_volume_set_meta(gp_volume *vol, const char *path,
	    const struct gp_file_meta *m);
/*
 * ext: a symbolic link at path to target.  NTFS: a directory junction
 * (mount-point reparse point, as mklink /J makes) at path to the absolute
 * Windows path target ("C:\\Windows\\..."): a new empty folder with the
 * security Windows would inherit from the parent.
 */
int	gp_volume_symlink(gp_volume *vol, const char *path, const char *target,
	    const struct gp_file_meta *m);
/* NTFS: the target of the junction at path (malloc'd; EINVAL when it is
 * not one).  ext: ENOTSUP. */
char	*gp_volume_link_target(gp_volume *vol, const char *path);
/* Delete a file, a link or an empty directory (with its 8.3 alias). */
int	gp_volume_remove(gp_volume *vol, const char *path);
/* gp_volume_remove that tolerates absence, and ok_errno (ENOTEMPTY, say)
 * when not 0: 0 removed, 1 absent, 2 left for ok_errno, -1 an error.  A
 * tolerated failure is recorded nowhere. */
int	gp_volume_remove_any(gp_volume *vol, const char *path, int ok_errno);
/* Cluster (block) size and free space. */
int	gp_volume_space(gp_volume *vol, uint64_t *cluster, uint64_t *free_bytes);
/* What one new file of size bytes takes on the volume, metadata
 * included, in bytes. */
uint64_t gp_volume_file_cost(gp_volume *vol, uint64_t size);
/* Free bytes of the volume that the image file already stores (data put
 * there does not grow a dynamic image); 0 when unknown. */
uint64_t gp_volume_stored_free(gp_volume *vol);
/* Each run of free clusters, as bytes from the volume's start. */
int	gp_volume_free_runs(gp_volume *vol, int (*fn)(void *ctx, uint64_t off,
	    uint64_t len), void *ctx);
/* Stream a file's contents to fn in pieces (fn returns -1 to stop). */
int	gp_volume_read_cb(gp_volume *vol, const char *path,
	    int (*fn)(void *ctx, const void *buf, size_t len), void *ctx);
/* Read a whole file of at most max bytes (NUL-terminated; caller frees). */
int	gp_volume_read(gp_volume *vol, const char *path, size_t max,
	    void **data, size_t *len);
/*
 * Whether new names get 8.3 aliases: mode 1 yes, 0 no, -1 as the entries
 * of dir_path show (Windows makes them on volumes with 8.3 names enabled
 * and stores plain POSIX-namespace names otherwise).  Returns the choice.
 */
int	gp_volume_short_names(gp_volume *vol, const char *dir_path, int mode);

/* ---- registry hives (hive layer) ---------------------------------- */

/*
 * Read a string value (REG_SZ / REG_EXPAND_SZ) from a hive file on the
 * host; key path components separated by '\\', matched case-insensitively.
 * Returns a new string or NULL (errno ENOENT when absent).
 */
char	*gp_hive_get_string(const char *hive_path, const char *key,
	    const char *value);
/*
 * Write a new, empty, clean hive (regf 1.5: a root key "ROOT" with an
 * Administrators/SYSTEM security descriptor) to path; hivex can then
 * populate it.
 */
int	gp_hive_create_empty(const char *path);

/* ---- the Windows installation (guest layer) ---------------------- */

struct gp_windows {
	unsigned partition;		/* partition index (0: whole disk) */
	unsigned slot;			/* position in the table's parts[] */
	char *system_root;		/* "\\Windows" in its stored case */
	char *build;			/* CurrentBuildNumber, or NULL */
	char *product;			/* ProductName, or NULL */
	char drive;			/* of SystemRoot ("C:\\Windows"), or 0 */
	enum gp_volume_state state;
	/* SYSTEM and SOFTWARE: "clean", "dirty" (logs to replay),
	 * "dirty-no-logs" (stage and remove refuse it), "unreadable", or
	 * NULL when the hive is absent. */
	const char *hive_state[2];
};

/*
 * Find the Windows volume by content: an NTFS volume holding
 * Windows\System32\config\SYSTEM (any case).  partition >= 0 forces
 * that index.  Also fills the NTFS labels in pt.  Returns -1 with
 * GP_EXIT_NO_WINDOWS when there is none (a BitLocker volume found
 * instead gives state GP_VOL_BITLOCKER and returns 0).
 */
int	gp_windows_find(gp_image *img, struct gp_partition_table *pt,
	    int partition, struct gp_windows *w);
void	gp_windows_free(struct gp_windows *w);

/* ---- a Linux installation (guest layer) --------------------------- */

struct gp_linux {
	unsigned partition;		/* partition index (0: whole disk) */
	unsigned slot;			/* position in the table's parts[] */
	const char *fs;			/* "ext2", "ext3", "ext4" */
	enum gp_volume_state state;
	/* From etc/os-release (printable ASCII; NULL when absent): */
	char *name, *version_id, *pretty_name, *id;
	char **kernels;			/* lib/modules entries */
	size_t nkernels;
	char *firstboot;		/* gpupv-prep's first-boot status line,
					   NULL when none was left */
};

/*
 * Find a Linux root by content: an ext2/3/4 file system holding
 * etc/os-release (or usr/lib/os-release).  partition >= 0 forces that
 * index.  Returns -1 with GP_EXIT_NO_WINDOWS when there is none, and
 * with GP_EXIT_CORRUPT naming them when the only candidates are file
 * systems this tool does not write (btrfs, xfs, LVM, LUKS).
 */
int	gp_linux_find(gp_image *img, struct gp_partition_table *pt,
	    int partition, struct gp_linux *l);
void	gp_linux_free(struct gp_linux *l);
/*
 * The guest: Windows (returns 0, w filled) or else a Linux root (returns
 * 1, l filled); -1 as gp_windows_find, GP_EXIT_NO_WINDOWS naming both
 * searches when there is neither.
 */
int	gp_guest_find(gp_image *img, struct gp_partition_table *pt,
	    int partition, struct gp_windows *w, struct gp_linux *l);
/* Where gpupv-prep's first-boot unit leaves its status in the guest. */
#define GP_LINUX_STATUS	"/var/lib/gpupv-prep/firstboot.status"

#ifdef __cplusplus
}
#endif

#endif
