#pragma once

// Fault injection for SQLite, for the fault tests:
//
// - `FaultyVfs`: a VFS that wraps the default one and fails the Nth xWrite, xSync or xTruncate (or every
//   call from the Nth on) with the I/O error a real disk gives, and can cap the size of every file to
//   simulate a full disk (SQLITE_FULL). Install it as the default VFS and every connection opened
//   afterwards goes through it.
// - `FaultyAllocator`: SQLite's allocator (SQLITE_CONFIG_MALLOC) wrapped to fail the Nth allocation.
//   Installing it shuts SQLite down and initializes it again, so no connection may be open.

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace test_support {

/// The file operations `FaultyVfs` can fail.
enum class IoOperation : std::uint8_t { write, sync, truncate };

[[nodiscard]] inline const char* name_of(IoOperation op) noexcept {
    switch (op) {
    case IoOperation::write:
        return "xWrite";
    case IoOperation::sync:
        return "xSync";
    case IoOperation::truncate:
        return "xTruncate";
    }
    return "?";
}

class FaultyVfs {
public:
    /// The process-wide instance, registered (not as the default) on first use.
    static FaultyVfs& instance() {
        static FaultyVfs vfs;
        return vfs;
    }
    FaultyVfs(const FaultyVfs&) = delete;
    FaultyVfs& operator=(const FaultyVfs&) = delete;

    /// Makes this VFS the default: connections opened from now on use it.
    void make_default() { check(sqlite3_vfs_register(&vfs_, 1), "register the faulty VFS"); }
    /// Makes the wrapped (real) VFS the default again.
    void restore_default() { check(sqlite3_vfs_register(real_, 1), "register the real VFS"); }

    /// From now on, fail the `n`th call (1 = the next one) of `op`, and with `persistent` every later one
    /// too, until `disarm()`. Counting starts at zero.
    void arm(IoOperation op, std::uint64_t n, bool persistent) noexcept {
        op_ = op;
        fail_at_ = n;
        persistent_ = persistent;
        calls_ = 0;
        failures_ = 0;
        armed_ = true;
    }
    void disarm() noexcept { armed_ = false; }
    /// Calls of the armed operation since `arm`, and how many of them failed.
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    [[nodiscard]] std::uint64_t failures() const noexcept { return failures_; }

    /// Every file refuses writes that would make it larger than `bytes` (SQLITE_FULL): a full disk.
    void limit_file_size(std::int64_t bytes) noexcept { size_limit_ = bytes; }
    void lift_file_size_limit() noexcept { size_limit_ = std::numeric_limits<std::int64_t>::max(); }
    /// Writes refused for lack of space so far.
    [[nodiscard]] std::uint64_t full_refusals() const noexcept { return full_refusals_; }

private:
    struct File {
        sqlite3_file base; // must come first: SQLite sees a File as an sqlite3_file
        FaultyVfs* owner;
        sqlite3_file* real; // the wrapped VFS's file, in the same allocation right after this struct
    };

    FaultyVfs() : real_(sqlite3_vfs_find(nullptr)) {
        if (real_ == nullptr) throw std::runtime_error("SQLite has no default VFS");
        vfs_ = *real_;
        vfs_.iVersion = 2;
        vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
        vfs_.pNext = nullptr;
        vfs_.zName = "orchestrix-faulty";
        vfs_.pAppData = this;
        vfs_.xOpen = &open;
        vfs_.xDelete = [](sqlite3_vfs* v, const char* name, int sync_dir) {
            return self(v).real_->xDelete(self(v).real_, name, sync_dir);
        };
        vfs_.xAccess = [](sqlite3_vfs* v, const char* name, int flags, int* out) {
            return self(v).real_->xAccess(self(v).real_, name, flags, out);
        };
        vfs_.xFullPathname = [](sqlite3_vfs* v, const char* name, int size, char* out) {
            return self(v).real_->xFullPathname(self(v).real_, name, size, out);
        };
        vfs_.xDlOpen = nullptr;
        vfs_.xDlError = nullptr;
        vfs_.xDlSym = nullptr;
        vfs_.xDlClose = nullptr;
        vfs_.xRandomness = [](sqlite3_vfs* v, int n, char* out) {
            return self(v).real_->xRandomness(self(v).real_, n, out);
        };
        vfs_.xSleep = [](sqlite3_vfs* v, int micros) { return self(v).real_->xSleep(self(v).real_, micros); };
        vfs_.xCurrentTime = [](sqlite3_vfs* v, double* out) { return self(v).real_->xCurrentTime(self(v).real_, out); };
        vfs_.xGetLastError = [](sqlite3_vfs* v, int n, char* out) {
            return self(v).real_->xGetLastError(self(v).real_, n, out);
        };
        vfs_.xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* out) {
            return self(v).real_->xCurrentTimeInt64(self(v).real_, out);
        };
        check(sqlite3_vfs_register(&vfs_, 0), "register the faulty VFS");
    }

    static FaultyVfs& self(sqlite3_vfs* v) noexcept { return *static_cast<FaultyVfs*>(v->pAppData); }
    static File& file(sqlite3_file* f) noexcept { return *reinterpret_cast<File*>(f); }
    static sqlite3_file* real(sqlite3_file* f) noexcept { return file(f).real; }

    static void check(int rc, const char* doing) {
        if (rc != SQLITE_OK) throw std::runtime_error(std::string("SQLite failed to ") + doing);
    }

    // Whether this call of `op` fails.
    bool inject(IoOperation op) noexcept {
        if (!armed_ || op != op_) return false;
        ++calls_;
        const bool fail = calls_ == fail_at_ || (persistent_ && calls_ > fail_at_);
        if (fail) ++failures_;
        return fail;
    }

    static int open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
        FaultyVfs& vfs = self(v);
        File& wrapper = file(f);
        wrapper.base.pMethods = nullptr;
        wrapper.owner = &vfs;
        wrapper.real = reinterpret_cast<sqlite3_file*>(&wrapper + 1);
        const int rc = vfs.real_->xOpen(vfs.real_, name, wrapper.real, flags, out_flags);
        if (rc == SQLITE_OK && wrapper.real->pMethods != nullptr) wrapper.base.pMethods = &methods();
        return rc;
    }

    static const sqlite3_io_methods& methods() {
        static const sqlite3_io_methods m = [] {
            sqlite3_io_methods io{};
            io.iVersion = 3;
            io.xClose = [](sqlite3_file* f) {
                const int rc = real(f)->pMethods->xClose(real(f));
                f->pMethods = nullptr;
                return rc;
            };
            io.xRead = [](sqlite3_file* f, void* data, int amount, sqlite3_int64 offset) {
                return real(f)->pMethods->xRead(real(f), data, amount, offset);
            };
            io.xWrite = [](sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
                FaultyVfs& vfs = *file(f).owner;
                if (vfs.inject(IoOperation::write)) return SQLITE_IOERR_WRITE;
                if (offset + amount > vfs.size_limit_) {
                    ++vfs.full_refusals_;
                    return SQLITE_FULL;
                }
                return real(f)->pMethods->xWrite(real(f), data, amount, offset);
            };
            io.xTruncate = [](sqlite3_file* f, sqlite3_int64 size) {
                if (file(f).owner->inject(IoOperation::truncate)) return SQLITE_IOERR_TRUNCATE;
                return real(f)->pMethods->xTruncate(real(f), size);
            };
            // A sync that is not failed succeeds without reaching the disk: these tests check what the store
            // does when a call fails, not durability (tests/sqlite/power_loss.cpp models that), and the
            // thousands of real fsyncs would make them wait on the disk for a minute.
            io.xSync = [](sqlite3_file* f, int) {
                if (file(f).owner->inject(IoOperation::sync)) return SQLITE_IOERR_FSYNC;
                return SQLITE_OK;
            };
            io.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
                return real(f)->pMethods->xFileSize(real(f), size);
            };
            io.xLock = [](sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); };
            io.xUnlock = [](sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); };
            io.xCheckReservedLock = [](sqlite3_file* f, int* out) {
                return real(f)->pMethods->xCheckReservedLock(real(f), out);
            };
            io.xFileControl = [](sqlite3_file* f, int op, void* arg) {
                return real(f)->pMethods->xFileControl(real(f), op, arg);
            };
            io.xSectorSize = [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); };
            io.xDeviceCharacteristics = [](sqlite3_file* f) {
                return real(f)->pMethods->xDeviceCharacteristics(real(f));
            };
            io.xShmMap = [](sqlite3_file* f, int region, int size, int extend, void volatile** out) {
                return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
            };
            io.xShmLock = [](sqlite3_file* f, int offset, int n, int flags) {
                return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
            };
            io.xShmBarrier = [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); };
            io.xShmUnmap = [](sqlite3_file* f, int delete_flag) {
                return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
            };
            // No memory-mapped I/O through the wrapper: SQLite falls back to xRead.
            io.xFetch = [](sqlite3_file*, sqlite3_int64, int, void** out) {
                *out = nullptr;
                return SQLITE_OK;
            };
            io.xUnfetch = [](sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; };
            return io;
        }();
        return m;
    }

    sqlite3_vfs* real_;
    sqlite3_vfs vfs_{};
    bool armed_ = false;
    IoOperation op_ = IoOperation::write;
    std::uint64_t fail_at_ = 0;
    bool persistent_ = false;
    std::uint64_t calls_ = 0;
    std::uint64_t failures_ = 0;
    std::int64_t size_limit_ = std::numeric_limits<std::int64_t>::max();
    std::uint64_t full_refusals_ = 0;
};

/// SQLite's allocator, wrapped to fail the Nth allocation (xMalloc or xRealloc) after `arm`. While it
/// exists, SQLite runs on it with lookaside memory off (so every allocation reaches it); the destructor
/// puts the original allocator back. No connection may be open when it is created or destroyed.
class FaultyAllocator {
public:
    FaultyAllocator() {
        instance_ = this;
        sqlite3_shutdown();
        check(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &original_), "read the allocator");
        sqlite3_mem_methods wrapped = original_;
        wrapped.xMalloc = [](int size) -> void* {
            return instance_->inject() ? nullptr : instance_->original_.xMalloc(size);
        };
        wrapped.xRealloc = [](void* p, int size) -> void* {
            return instance_->inject() ? nullptr : instance_->original_.xRealloc(p, size);
        };
        check(sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapped), "install the faulty allocator");
        check(sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0), "turn lookaside memory off");
        check(sqlite3_initialize(), "initialize");
    }
    FaultyAllocator(const FaultyAllocator&) = delete;
    FaultyAllocator& operator=(const FaultyAllocator&) = delete;
    ~FaultyAllocator() {
        sqlite3_shutdown();
        sqlite3_config(SQLITE_CONFIG_MALLOC, &original_);
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 1200, 100);
        sqlite3_initialize();
        instance_ = nullptr;
    }

    /// Fail the `n`th allocation from now on (1 = the next one), and only that one.
    void arm(std::uint64_t n) noexcept {
        fail_at_ = n;
        calls_ = 0;
        failures_ = 0;
        armed_ = true;
    }
    void disarm() noexcept { armed_ = false; }
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    [[nodiscard]] std::uint64_t failures() const noexcept { return failures_; }

private:
    static void check(int rc, const char* doing) {
        if (rc != SQLITE_OK) throw std::runtime_error(std::string("SQLite failed to ") + doing);
    }

    bool inject() noexcept {
        if (!armed_) return false;
        ++calls_;
        if (calls_ != fail_at_) return false;
        ++failures_;
        return true;
    }

    static inline FaultyAllocator* instance_ = nullptr;
    sqlite3_mem_methods original_{};
    bool armed_ = false;
    std::uint64_t fail_at_ = 0;
    std::uint64_t calls_ = 0;
    std::uint64_t failures_ = 0;
};

} // namespace test_support
