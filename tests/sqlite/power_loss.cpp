// Power loss on the SQLite store. A VFS shim keeps, for every database, WAL and rollback-journal file, the
// content as of its last successful xSync (its durable image) and the writes and truncations made since. A
// workload of 30 appends (1 to 5 events each, three streams) creates the store, closes and reopens it half
// way and closes it at the end, so the cuts also hit the file's creation (the one time the store, always in
// WAL mode, uses a rollback journal: while switching the new file to WAL), a checkpoint, and the WAL's
// deletion and re-creation. It is run once for every I/O call index N (xWrite, xSync, xTruncate, xDelete):
// the power goes off just before call N, which fails with every later call (and open); then every file is
// put back to its durable image, the unsynced data lost, and the store is reopened on what is left.
//
// The model: nothing written after a file's last xSync survives (no torn or reordered writes are kept); a
// truncation is durable with the next xSync, like a write; an xDelete is durable at once (SQLite's own
// assumption with directory syncs off); a file created by xOpen exists after the cut only if it was synced
// (SQLite's unix VFS syncs the directory on a new journal's or WAL's first sync; for a new database file
// this assumes, as ext4 and XFS do, that the fsync of a new file makes its name durable); the -shm file is
// rebuilt on reopening, as after a reboot.
//
// Checked after every cut: `PRAGMA integrity_check` is ok; the store holds the first k appends of the
// workload, each batch whole and byte for byte as an uncut run stored it (no gap, no partial batch, identical
// ids, versions, positions and payloads); under synchronous=FULL every acknowledged append is among them
// (the one in flight may be too); and new appends get the next versions and positions. Under
// synchronous=NORMAL a power cut may lose the latest acknowledged appends (SQLite syncs the WAL only at
// checkpoints): the test counts them.
//
// ORCHESTRIX_POWER_CUTS sets how many cut points to try per synchronous level, spread evenly over the
// workload's I/O calls (0, or at least the number of calls: every one). By default every call is tried,
// or 150 of them in a build with AddressSanitizer or ThreadSanitizer.

#include <orchestrix/sqlite/event_store.hpp>

#include "support/catch.hpp"
#include "support/temp_dir.hpp"
#include "support/test_events.hpp"
#include "support/test_events_json.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using orchestrix::ExpectedVersion;
using test_domain::AccountEvent;
using test_domain::AccountOpened;
using test_domain::MoneyDeposited;
using test_domain::MoneyWithdrawn;
using Store = orchestrix::SqliteEventStore<AccountEvent>;
using Envelope = orchestrix::EventEnvelope<AccountEvent>;

// ---------------------------------------------------------------------------------------------------------
// The power-loss VFS.

/// The mutating file operations, each a possible cut point.
enum class IoCall : std::uint8_t { write, sync, truncate, remove };
constexpr std::size_t io_call_kinds = 4;

std::optional<std::string> read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string content(static_cast<std::size_t>(std::filesystem::file_size(path)), '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    if (!in) throw std::runtime_error("cannot read " + path);
    return content;
}

void write_whole_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

/// A VFS over the default one that models a power cut. Files are read and written on disk as usual (the
/// volatile view); for each database, journal and WAL file it also keeps the durable image and the changes
/// since the last xSync, which it applies to the image on the next xSync instead of syncing the real file.
/// Once the power is off every write, sync, truncation, deletion and open fails with an I/O error.
/// `restore_durable_images` then replaces every file on disk by its durable image.
class PowerLossVfs {
public:
    static PowerLossVfs& instance() {
        static PowerLossVfs vfs;
        return vfs;
    }
    PowerLossVfs(const PowerLossVfs&) = delete;
    PowerLossVfs& operator=(const PowerLossVfs&) = delete;

    /// While it exists, this VFS is the default (connections opened meanwhile use it), counting from
    /// `start(cut_at)`; the real one is the default again afterwards.
    class AsDefault {
    public:
        explicit AsDefault(std::uint64_t cut_at) {
            PowerLossVfs& vfs = instance();
            vfs.start(cut_at);
            check(sqlite3_vfs_register(&vfs.vfs_, 1), "register the power-loss VFS");
        }
        AsDefault(const AsDefault&) = delete;
        AsDefault& operator=(const AsDefault&) = delete;
        ~AsDefault() { sqlite3_vfs_register(instance().real_, 1); }
    };

    /// Whether the power has gone off.
    [[nodiscard]] bool power_off() const noexcept { return cut_at_ != 0 && calls_ >= cut_at_; }
    /// I/O calls since `start` (the failed ones included), and those of one kind.
    [[nodiscard]] std::uint64_t calls() const noexcept { return calls_; }
    [[nodiscard]] std::uint64_t calls(IoCall kind) const noexcept { return counts_.at(static_cast<std::size_t>(kind)); }

    /// The power cut itself: every file seen since `start` gets its durable content back (or is deleted if
    /// it has none), and the -shm files go. No file may be open.
    void restore_durable_images() {
        if (open_files_ != 0) throw std::logic_error("PowerLossVfs::restore_durable_images with files open");
        for (auto& [path, image] : files_) {
            if (!image.seen) continue;
            if (image.exists) {
                write_whole_file(path, image.durable);
            } else {
                std::filesystem::remove(path);
            }
            image.forget_pending();
            if (image.database) std::filesystem::remove(path + "-shm");
        }
    }

private:
    // Forgets every file and starts counting I/O calls; the power goes off just before the `cut_at`th one
    // (never if 0). No file may be open.
    void start(std::uint64_t cut_at) {
        if (open_files_ != 0) throw std::logic_error("PowerLossVfs::start with files open");
        for (auto& entry : files_) entry.second.reset();
        cut_at_ = cut_at;
        calls_ = 0;
        counts_ = {};
    }

    // A write (`length` bytes at `offset`, kept in the image's `pending_data` from `at` on) or a truncation
    // (to `offset` bytes) not yet made durable.
    struct Change {
        std::int64_t offset = 0;
        std::size_t at = 0;
        std::size_t length = 0;
        bool truncation = false;
    };
    // A file's durable image and its changes since. The buffers are kept from run to run (each run opens
    // the same files), so the bookkeeping hardly allocates.
    struct Image {
        bool seen = false;   // opened since `start`
        bool exists = false; // whether the file would exist after a power cut, ...
        std::string durable; // ... and with what in it
        std::vector<Change> pending;
        std::string pending_data;
        bool database = false;

        void reset() {
            seen = false;
            remove();
        }
        void forget_pending() {
            pending.clear();
            pending_data.clear();
        }
        void write(const void* data, std::size_t length, std::int64_t offset) {
            pending.push_back(Change{offset, pending_data.size(), length, false});
            pending_data.append(static_cast<const char*>(data), length);
        }
        void truncate(std::int64_t size) { pending.push_back(Change{size, 0, 0, true}); }
        void sync() {
            exists = true;
            for (const Change& change : pending) apply(change);
            forget_pending();
        }
        void remove() {
            exists = false;
            durable.clear();
            forget_pending();
        }

    private:
        void apply(const Change& change) {
            const auto offset = static_cast<std::size_t>(change.offset);
            if (change.truncation) {
                durable.resize(offset, '\0');
                return;
            }
            const std::string_view data = std::string_view(pending_data).substr(change.at, change.length);
            if (durable.size() < offset) durable.resize(offset, '\0');
            const std::size_t overwritten = std::min(durable.size() - offset, data.size());
            durable.replace(offset, overwritten, data.substr(0, overwritten));
            durable.append(data.substr(overwritten));
        }
    };
    struct File {
        sqlite3_file base; // must come first: SQLite sees a File as an sqlite3_file
        PowerLossVfs* owner;
        Image* image;       // nullptr for files that never outlive a crash (temporary files)
        sqlite3_file* real; // the wrapped VFS's file, in the same allocation right after this struct
    };

    PowerLossVfs() : real_(sqlite3_vfs_find(nullptr)) {
        if (real_ == nullptr) throw std::runtime_error("SQLite has no default VFS");
        vfs_ = *real_;
        vfs_.iVersion = 2;
        vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
        vfs_.pNext = nullptr;
        vfs_.zName = "orchestrix-power-loss";
        vfs_.pAppData = this;
        vfs_.xOpen = &open;
        vfs_.xDelete = &remove;
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
        check(sqlite3_vfs_register(&vfs_, 0), "register the power-loss VFS");
    }

    static PowerLossVfs& self(sqlite3_vfs* v) noexcept { return *static_cast<PowerLossVfs*>(v->pAppData); }
    static File& file(sqlite3_file* f) noexcept { return *reinterpret_cast<File*>(f); }
    static sqlite3_file* real(sqlite3_file* f) noexcept { return file(f).real; }

    static void check(int rc, const char* doing) {
        if (rc != SQLITE_OK) throw std::runtime_error(std::string("SQLite failed to ") + doing);
    }

    // Counts an I/O call; false if it must fail because the power is off.
    bool io_call(IoCall kind) noexcept {
        ++calls_;
        ++counts_.at(static_cast<std::size_t>(kind));
        return !power_off();
    }

    static int open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
        PowerLossVfs& vfs = self(v);
        File& wrapper = file(f);
        wrapper.base.pMethods = nullptr;
        wrapper.owner = &vfs;
        wrapper.image = nullptr;
        wrapper.real = reinterpret_cast<sqlite3_file*>(&wrapper + 1);
        if (vfs.power_off()) return SQLITE_CANTOPEN;
        constexpr int durable_kinds = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL;
        if (name != nullptr && (flags & durable_kinds) != 0) {
            try {
                Image& image = vfs.files_[name];
                if (!image.seen) {
                    image.seen = true;
                    image.database = (flags & SQLITE_OPEN_MAIN_DB) != 0;
                    if (auto content = read_whole_file(name)) { // a file there before `start` is durable
                        image.exists = true;
                        image.durable = std::move(*content);
                    }
                }
                wrapper.image = &image;
            } catch (...) {
                return SQLITE_IOERR_NOMEM;
            }
        }
        const int rc = vfs.real_->xOpen(vfs.real_, name, wrapper.real, flags, out_flags);
        if (wrapper.real->pMethods != nullptr) {
            wrapper.base.pMethods = &methods();
            ++vfs.open_files_;
        }
        return rc;
    }

    static int remove(sqlite3_vfs* v, const char* name, int sync_dir) {
        PowerLossVfs& vfs = self(v);
        if (!vfs.io_call(IoCall::remove)) return SQLITE_IOERR_DELETE;
        const int rc = vfs.real_->xDelete(vfs.real_, name, sync_dir);
        if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) {
            // Durable at once, whatever `sync_dir` asks.
            if (const auto it = vfs.files_.find(name); it != vfs.files_.end()) it->second.remove();
        }
        return rc;
    }

    static int write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
        File& wrapper = file(f);
        PowerLossVfs& vfs = *wrapper.owner;
        if (wrapper.image == nullptr) {
            if (vfs.power_off()) return SQLITE_IOERR_WRITE;
        } else if (!vfs.io_call(IoCall::write)) {
            return SQLITE_IOERR_WRITE;
        }
        const int rc = real(f)->pMethods->xWrite(real(f), data, amount, offset);
        if (rc == SQLITE_OK && wrapper.image != nullptr) {
            try {
                wrapper.image->write(data, static_cast<std::size_t>(amount), offset);
            } catch (...) {
                return SQLITE_IOERR_NOMEM;
            }
        }
        return rc;
    }

    static int truncate(sqlite3_file* f, sqlite3_int64 size) {
        File& wrapper = file(f);
        PowerLossVfs& vfs = *wrapper.owner;
        if (wrapper.image == nullptr) {
            if (vfs.power_off()) return SQLITE_IOERR_TRUNCATE;
        } else if (!vfs.io_call(IoCall::truncate)) {
            return SQLITE_IOERR_TRUNCATE;
        }
        const int rc = real(f)->pMethods->xTruncate(real(f), size);
        if (rc == SQLITE_OK && wrapper.image != nullptr) {
            try {
                wrapper.image->truncate(size);
            } catch (...) {
                return SQLITE_IOERR_NOMEM;
            }
        }
        return rc;
    }

    // The real file is not synced: durability is what the image says.
    static int sync(sqlite3_file* f, int /*flags*/) {
        File& wrapper = file(f);
        PowerLossVfs& vfs = *wrapper.owner;
        if (wrapper.image == nullptr) return vfs.power_off() ? SQLITE_IOERR_FSYNC : SQLITE_OK;
        if (!vfs.io_call(IoCall::sync)) return SQLITE_IOERR_FSYNC;
        try {
            wrapper.image->sync();
        } catch (...) {
            return SQLITE_IOERR_NOMEM;
        }
        return SQLITE_OK;
    }

    static const sqlite3_io_methods& methods() {
        static const sqlite3_io_methods m = [] {
            sqlite3_io_methods io{};
            io.iVersion = 3;
            io.xClose = [](sqlite3_file* f) {
                const int rc = real(f)->pMethods->xClose(real(f));
                f->pMethods = nullptr;
                --file(f).owner->open_files_;
                return rc;
            };
            io.xRead = [](sqlite3_file* f, void* data, int amount, sqlite3_int64 offset) {
                return real(f)->pMethods->xRead(real(f), data, amount, offset);
            };
            io.xWrite = &write;
            io.xTruncate = &truncate;
            io.xSync = &sync;
            io.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
                return real(f)->pMethods->xFileSize(real(f), size);
            };
            io.xLock = [](sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); };
            io.xUnlock = [](sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); };
            io.xCheckReservedLock = [](sqlite3_file* f, int* out) {
                return real(f)->pMethods->xCheckReservedLock(real(f), out);
            };
            io.xFileControl = [](sqlite3_file* f, int op, void* arg) {
                // A size hint would let the real VFS grow the file behind the image's back.
                if (op == SQLITE_FCNTL_SIZE_HINT) return SQLITE_OK;
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
    std::map<std::string, Image> files_; // by the name SQLite opens and deletes them with
    std::uint64_t open_files_ = 0;
    std::uint64_t cut_at_ = 0;
    std::uint64_t calls_ = 0;
    std::array<std::uint64_t, io_call_kinds> counts_{};
};

// ---------------------------------------------------------------------------------------------------------
// The workload and what the store must hold after it.

// An event as the store returns it, without its recording time.
using Row = std::tuple<std::string, std::uint64_t, std::uint64_t, AccountEvent, std::string, std::string>;
// An event as SQLite holds it, without its recording time: position, stream, version, event id, type,
// schema version, payload, metadata.
using StoredRow = std::tuple<std::int64_t, std::string, std::int64_t, std::string, std::string, std::int64_t,
                             std::string, std::string>;

std::vector<Row> contents(const Store& store) {
    std::vector<Row> rows;
    for (const auto& e : store.read_all()) {
        rows.emplace_back(e.stream_id, e.version, e.position, e.event, e.metadata.event_id.to_string(),
                          e.metadata.correlation_id);
    }
    return rows;
}

// `PRAGMA integrity_check` and the stored events, read on a connection of its own.
struct Inspection {
    std::string integrity = "cannot open";
    std::vector<StoredRow> rows;
};

Inspection inspect(const std::string& path) {
    Inspection out;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            out.integrity = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        }
        sqlite3_finalize(stmt);
        stmt = nullptr;
        auto text = [&](int column) {
            const auto* data = sqlite3_column_text(stmt, column);
            return data == nullptr ? std::string("(null)")
                                   : std::string(reinterpret_cast<const char*>(data),
                                                 static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
        };
        if (sqlite3_prepare_v2(db,
                               "SELECT position, stream_id, version, event_id, type, schema_version, payload, "
                               "metadata FROM events ORDER BY position",
                               -1, &stmt, nullptr) == SQLITE_OK) {
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                out.rows.emplace_back(sqlite3_column_int64(stmt, 0), text(1), sqlite3_column_int64(stmt, 2), text(3),
                                      text(4), sqlite3_column_int64(stmt, 5), text(6), text(7));
            }
        }
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return out;
}

const std::array<std::string, 3> streams{"account-0", "account-1", "account-2"};

struct Step {
    std::string stream;
    std::vector<Envelope> batch;
    orchestrix::stream_version_t expected = 0;
    orchestrix::AppendResult result; // what the append must return
    std::vector<Row> rows;           // ... and the events it adds
};

// 30 appends of 1 to 5 events to three streams, the same every run (event ids included); every 16th event
// carries an owner large enough to need overflow pages. The store is closed and reopened after `reopen_after`.
struct Workload {
    std::vector<Step> steps;
    std::size_t reopen_after = 15;
    std::vector<Row> rows;         // the events of all the appends, in order
    std::vector<StoredRow> stored; // ... as SQLite holds them (taken from an uncut run)

    Workload() {
        std::minstd_rand random(20240611); // a fixed seed: the same workload every run
        std::map<std::string, orchestrix::stream_version_t> versions;
        orchestrix::position_t position = 0;
        std::uint64_t event = 0;
        for (std::size_t i = 0; i < 30; ++i) {
            Step step;
            step.stream = streams.at(random() % streams.size());
            const std::size_t size = 1 + random() % 5;
            auto& version = versions[step.stream];
            step.expected = version;
            for (std::size_t j = 0; j < size; ++j, ++event) {
                const auto amount = static_cast<std::int64_t>(event + 1);
                AccountEvent payload = MoneyDeposited{step.stream, amount};
                if (version + j == 0 || event % 16 == 5) {
                    const auto length = event % 16 == 5 ? 4500 + 1000 * (event % 3) : 10;
                    payload = AccountOpened{step.stream, std::string(length, static_cast<char>('a' + event % 26))};
                } else if (event % 3 == 2) {
                    payload = MoneyWithdrawn{step.stream, amount};
                }
                const std::string correlation = "step-" + std::to_string(i);
                step.batch.emplace_back(payload,
                                        orchestrix::Metadata{orchestrix::Uuid::generate(), correlation, {}, {}, {}});
                step.rows.emplace_back(step.stream, version + j + 1, position + j + 1, payload,
                                       step.batch.back().metadata.event_id.to_string(), correlation);
            }
            rows.insert(rows.end(), step.rows.begin(), step.rows.end());
            step.result = orchestrix::AppendResult{version + size, position + 1, position + size, true};
            version += size;
            position += size;
            steps.push_back(std::move(step));
        }
    }

    // The number of whole appends `found` holds if it is exactly the events of the first k appends (in
    // `all`, the events of every append); nothing if it is anything else: a gap, a partial batch, a changed
    // payload, id, version or position.
    template <class R>
    [[nodiscard]] std::optional<std::size_t> whole_appends_in(const std::vector<R>& found,
                                                              const std::vector<R>& all) const {
        if (found.size() > all.size() || !std::equal(found.begin(), found.end(), all.begin())) return std::nullopt;
        std::size_t at = 0;
        for (std::size_t k = 0; k < steps.size() && at < found.size(); ++k) {
            at += steps[k].rows.size();
            if (at == found.size()) return k + 1;
        }
        return at == found.size() ? std::optional<std::size_t>(0) : std::nullopt;
    }
};

struct Run {
    std::size_t acknowledged = 0; // appends that returned
    bool in_flight = false;       // ... and the next one had started when the power went off
};

// Runs the workload on a new store at `path` until the first error, which only a power cut may cause.
Run run_workload(const Workload& w, const std::string& path, const orchestrix::SqliteOptions& options) {
    Run run;
    try {
        std::size_t i = 0;
        for (const std::size_t end : {w.reopen_after, w.steps.size()}) {
            Store store(path, options);
            for (; i < end; ++i) {
                const Step& step = w.steps[i];
                run.in_flight = true;
                const auto result = store.append(step.stream, step.batch, ExpectedVersion::exact(step.expected));
                run.in_flight = false;
                REQUIRE(result == step.result);
                ++run.acknowledged;
            }
        }
    } catch (const orchestrix::Error& e) {
        INFO(e.what());
        REQUIRE(PowerLossVfs::instance().power_off());
    }
    return run;
}

struct Tally {
    std::uint64_t cut_points = 0;   // power cuts the store recovered from
    std::uint64_t acknowledged = 0; // acknowledged appends checked after them
    std::uint64_t lost = 0;         // ... and missing
    std::uint64_t most_lost = 0;    // ... the most after one cut
    std::uint64_t in_flight = 0;    // appends cut short that were found whole all the same
    std::uint64_t empty = 0;        // cuts after which the store was empty
};

// After the power cut: reopens the store on the durable images and checks it (see the top of the file).
void check_recovery(const Workload& w, const std::string& path, const orchestrix::SqliteOptions& options,
                    const Run& run, Tally& tally) {
    const bool full = options.synchronous == orchestrix::SqliteSynchronous::full;
    INFO(run.acknowledged << " appends acknowledged" << (run.in_flight ? ", one in flight" : ""));
    Store store(path, options);
    const Inspection found = inspect(path); // a second connection, beside the store's
    INFO(found.rows.size() << " events found");
    REQUIRE(found.integrity == "ok");
    const auto appends = w.whole_appends_in(found.rows, w.stored);
    REQUIRE(appends.has_value()); // a prefix of whole appends, each byte for byte as stored by an uncut run
    REQUIRE(*appends <= run.acknowledged + (run.in_flight ? 1U : 0U));
    if (full) REQUIRE(*appends >= run.acknowledged);
    tally.acknowledged += run.acknowledged;
    const std::uint64_t lost = run.acknowledged - std::min(*appends, run.acknowledged);
    tally.lost += lost;
    tally.most_lost = std::max(tally.most_lost, lost);
    if (*appends > run.acknowledged) ++tally.in_flight;
    if (*appends == 0) ++tally.empty;

    // Appending goes on from where the store is: next versions, next positions; a stale version is refused.
    auto head = static_cast<orchestrix::position_t>(found.rows.size());
    REQUIRE(store.head_position() == head);
    for (const auto& stream : streams) {
        const auto version = static_cast<orchestrix::stream_version_t>(std::count_if(
            found.rows.begin(), found.rows.end(), [&](const StoredRow& r) { return std::get<1>(r) == stream; }));
        REQUIRE(store.stream_version(stream) == version);
        const auto result = store.append(stream, {MoneyDeposited{stream, 1}, MoneyWithdrawn{stream, 1}},
                                         ExpectedVersion::exact(version));
        REQUIRE(result == orchestrix::AppendResult{version + 2, head + 1, head + 2, true});
        REQUIRE_THROWS_AS(store.append(stream, {MoneyDeposited{stream, 3}}, ExpectedVersion::exact(version)),
                          orchestrix::ConcurrencyError);
        const auto added = store.read_stream(stream, version + 1);
        REQUIRE(added.size() == 2);
        REQUIRE(added[0].event == AccountEvent{MoneyDeposited{stream, 1}});
        REQUIRE(added[1].position == head + 2);
        head += 2;
    }
    REQUIRE(store.head_position() == head);
    ++tally.cut_points;
}

void remove_store_files(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix);
}

// ORCHESTRIX_POWER_CUTS: a whole number, or unset for `fallback`.
std::uint64_t cut_point_budget(std::uint64_t fallback) {
    const char* value = std::getenv("ORCHESTRIX_POWER_CUTS");
    if (value == nullptr || *value == '\0') return fallback;
    const std::string_view text(value);
    std::uint64_t parsed = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed, 10);
    if (error != std::errc{} || end != text.data() + text.size()) {
        throw std::invalid_argument("ORCHESTRIX_POWER_CUTS must be a whole number, not \"" + std::string(text) + "\"");
    }
    return parsed;
}

// The cut points to try among `calls` I/O calls: every one, or `budget` of them spread evenly (the last
// call always among them).
std::vector<std::uint64_t> cut_points(std::uint64_t calls, std::uint64_t budget) {
    std::vector<std::uint64_t> points;
    if (budget == 0 || budget >= calls) {
        for (std::uint64_t n = 1; n <= calls; ++n) points.push_back(n);
        return points;
    }
    for (std::uint64_t i = 1; i <= budget; ++i) points.push_back(i * calls / budget);
    return points;
}

// Every I/O call is a cut point by default; a sanitized build, several times slower, tries 150 of them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ORCHESTRIX_POWER_LOSS_SANITIZED
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ORCHESTRIX_POWER_LOSS_SANITIZED
#endif
#endif
#ifdef ORCHESTRIX_POWER_LOSS_SANITIZED
constexpr std::uint64_t default_cut_points = 150;
#else
constexpr std::uint64_t default_cut_points = 0;
#endif

// Runs the workload uncut, then cut at each chosen point, and checks every recovery.
Tally power_cuts(const orchestrix::SqliteOptions& options, const char* level) {
    Workload w;
    test_support::TempDir dir{"orchestrix-power-loss"};
    const std::string path = dir.file("store.db");
    PowerLossVfs& vfs = PowerLossVfs::instance();
    Tally tally;

    // Uncut: every append acknowledged; after the store's clean close all of it is durable, as appended.
    std::uint64_t calls = 0;
    {
        const PowerLossVfs::AsDefault as_default(0);
        const Run uncut = run_workload(w, path, options);
        REQUIRE(uncut.acknowledged == w.steps.size());
        calls = vfs.calls();
        std::printf("power loss: synchronous=%-6s workload of %zu appends: %llu I/O calls (%llu writes, %llu syncs, "
                    "%llu truncates, %llu deletes)\n",
                    level, w.steps.size(), static_cast<unsigned long long>(calls),
                    static_cast<unsigned long long>(vfs.calls(IoCall::write)),
                    static_cast<unsigned long long>(vfs.calls(IoCall::sync)),
                    static_cast<unsigned long long>(vfs.calls(IoCall::truncate)),
                    static_cast<unsigned long long>(vfs.calls(IoCall::remove)));
    }
    vfs.restore_durable_images();
    {
        const PowerLossVfs::AsDefault as_default(0);
        const Store store(path, options);
        REQUIRE(w.whole_appends_in(contents(store), w.rows) == w.steps.size());
        Inspection stored = inspect(path);
        REQUIRE(stored.integrity == "ok");
        REQUIRE(stored.rows.size() == w.rows.size());
        w.stored = std::move(stored.rows);
    }
    remove_store_files(path);

    const auto points = cut_points(calls, cut_point_budget(default_cut_points));
    for (const std::uint64_t n : points) {
        INFO("synchronous=" << level << ", power cut just before I/O call " << n << " of " << calls);
        Run run;
        {
            const PowerLossVfs::AsDefault as_default(n);
            run = run_workload(w, path, options);
            REQUIRE(vfs.power_off()); // the workload makes the same calls every time
        }
        vfs.restore_durable_images();
        {
            // Power back on. The checks go through the VFS too (uncut), sparing the disk their syncs.
            const PowerLossVfs::AsDefault as_default(0);
            check_recovery(w, path, options, run, tally);
        }
        remove_store_files(path);
    }
    return tally;
}

void report(const char* level, const Tally& t) {
    std::printf("power loss: synchronous=%-6s %llu cut points survived, %llu acknowledged appends checked, %llu "
                "lost (at most %llu at one cut); %llu appends in flight found whole; %llu cuts left an empty store\n",
                level, static_cast<unsigned long long>(t.cut_points), static_cast<unsigned long long>(t.acknowledged),
                static_cast<unsigned long long>(t.lost), static_cast<unsigned long long>(t.most_lost),
                static_cast<unsigned long long>(t.in_flight), static_cast<unsigned long long>(t.empty));
}

} // namespace

TEST_CASE("sqlite power loss: under synchronous=FULL every acknowledged append survives a cut at any I/O call") {
    const Tally t = power_cuts({orchestrix::SqliteSynchronous::full, std::chrono::milliseconds(1000)}, "FULL");
    report("FULL", t);
    CHECK(t.lost == 0);
    CHECK(t.acknowledged > 0);
}

TEST_CASE("sqlite power loss: under synchronous=NORMAL a cut loses at most the latest appends, never part of one") {
    const Tally t = power_cuts({orchestrix::SqliteSynchronous::normal, std::chrono::milliseconds(1000)}, "NORMAL");
    report("NORMAL", t);
    // NORMAL does not sync the WAL at commit: if nothing acknowledged were lost, the simulation would not be
    // discarding unsynced writes.
    CHECK(t.lost > 0);
}
