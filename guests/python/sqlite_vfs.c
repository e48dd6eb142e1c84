/* The operating-system layer of the CPython guest's SQLite (built with SQLITE_OS_OTHER=1, see
 * build.sh). The guest has no file system at call time, so this VFS opens no files: in-memory
 * databases (":memory:", and what sqlite3_deserialize loads) work, a file name fails with
 * SQLITE_CANTOPEN ("unable to open database file"). Temporary tables and sort spills stay in
 * memory (SQLITE_TEMP_STORE=3). Randomness comes from WASI random_get, time from the WASI
 * real-time clock. */
#include <time.h>
#include <wasi/api.h>

#include "sqlite3.h"

static int open_file(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                     int *out_flags) {
    (void)vfs, (void)name, (void)flags, (void)out_flags;
    file->pMethods = 0; /* tells SQLite there is nothing to close */
    return SQLITE_CANTOPEN;
}

static int delete_file(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    (void)vfs, (void)name, (void)sync_dir;
    return SQLITE_IOERR_DELETE_NOENT;
}

static int access_file(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs, (void)name, (void)flags;
    *result = 0; /* no file exists */
    return SQLITE_OK;
}

static int full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    sqlite3_snprintf(size, out, "%s", name);
    return SQLITE_OK;
}

static int randomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    if (__wasi_random_get((uint8_t *)out, (__wasi_size_t)size) != 0) return 0;
    return size;
}

/* Nothing to wait for: no other process can hold a lock. */
static int sleep_microseconds(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return microseconds;
}

/* Milliseconds since the Julian epoch (noon, 24 November 4714 BC), as SQLite's unix VFS. */
static int current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return SQLITE_ERROR;
    *out = (sqlite3_int64)210866760000000LL + (sqlite3_int64)now.tv_sec * 1000 +
           now.tv_nsec / 1000000;
    return SQLITE_OK;
}

static int current_time(sqlite3_vfs *vfs, double *out) {
    sqlite3_int64 milliseconds;
    int status = current_time_int64(vfs, &milliseconds);
    *out = milliseconds / 86400000.0;
    return status;
}

static int last_error(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs, (void)size, (void)out;
    return 0;
}

static sqlite3_vfs no_files_vfs = {
    .iVersion = 2,
    .szOsFile = sizeof(sqlite3_file),
    .mxPathname = 512,
    .zName = "zeval-no-files",
    .xOpen = open_file,
    .xDelete = delete_file,
    .xAccess = access_file,
    .xFullPathname = full_pathname,
    .xRandomness = randomness,
    .xSleep = sleep_microseconds,
    .xCurrentTime = current_time,
    .xGetLastError = last_error,
    .xCurrentTimeInt64 = current_time_int64,
};

int sqlite3_os_init(void) { return sqlite3_vfs_register(&no_files_vfs, 1); }

int sqlite3_os_end(void) { return SQLITE_OK; }
