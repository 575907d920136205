#include "head/head_db.h"

#include <sqlite3.h>

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "util/log.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::pair<JobStatus, std::string_view>, 5> kStatusNames{{
    {JobStatus::kPending, "PENDING"},
    {JobStatus::kRunning, "RUNNING"},
    {JobStatus::kStopped, "STOPPED"},
    {JobStatus::kSucceeded, "SUCCEEDED"},
    {JobStatus::kFailed, "FAILED"},
}};

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  submission_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  entrypoint TEXT NOT NULL,
  status TEXT NOT NULL,
  message TEXT NOT NULL,
  error_type TEXT NOT NULL,
  start_time_ms INTEGER NOT NULL,
  end_time_ms INTEGER,
  metadata TEXT NOT NULL,
  runtime_env TEXT NOT NULL,
  entrypoint_num_cpus REAL NOT NULL,
  entrypoint_num_gpus REAL NOT NULL,
  entrypoint_memory INTEGER NOT NULL,
  entrypoint_resources TEXT NOT NULL,
  driver_exit_code INTEGER,
  driver_pid INTEGER,
  driver_node_id TEXT NOT NULL,
  cluster_env TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS job_events(
  submission_id TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events(submission_id);
CREATE TABLE IF NOT EXISTS package_pins(
  uri TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (uri, holder));
CREATE INDEX IF NOT EXISTS package_pins_by_holder ON package_pins(holder);
CREATE INDEX IF NOT EXISTS package_pins_by_expiry ON package_pins(expires_ms);
CREATE TABLE IF NOT EXISTS cluster_envs(
  name TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  archived_ms INTEGER);
CREATE TABLE IF NOT EXISTS cluster_env_builds(
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec TEXT NOT NULL,
  status TEXT NOT NULL,
  image_ref TEXT NOT NULL,
  image_id TEXT NOT NULL,
  digest TEXT NOT NULL,
  registry_ref TEXT NOT NULL,
  oci_archive TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER,
  finished_ms INTEGER,
  error_message TEXT NOT NULL,
  log TEXT NOT NULL,
  PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS cluster_env_builds_by_status ON cluster_env_builds(status);
)sql";

// Databases written before a column existed get it here (CREATE TABLE IF
// NOT EXISTS leaves an old table as it was).
util::Status AddMissingColumns(sqlite3* db, const std::filesystem::path& file) {
  bool has_cluster_env = false;
  auto collect = [](void* found, int columns, char** values, char** names) {
    for (int i = 0; i < columns; ++i) {
      if (std::string_view(names[i]) == "name" && values[i] != nullptr &&
          std::string_view(values[i]) == "cluster_env") {
        *static_cast<bool*>(found) = true;
      }
    }
    return 0;
  };
  const char* alter = "ALTER TABLE jobs ADD COLUMN cluster_env TEXT NOT NULL DEFAULT ''";
  char* message = nullptr;
  if (sqlite3_exec(db, "PRAGMA table_info(jobs)", collect, &has_cluster_env, &message) !=
          SQLITE_OK ||
      (!has_cluster_env && sqlite3_exec(db, alter, nullptr, nullptr, &message) != SQLITE_OK)) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return util::IOError("cannot upgrade head database " + file.string() + ": " + text);
  }
  return {};
}

// Column order shared by the SELECTs and ReadJob.
constexpr const char* kJobColumns =
    "submission_id, entrypoint, status, message, error_type, start_time_ms, end_time_ms, "
    "metadata, runtime_env, entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory, "
    "entrypoint_resources, driver_exit_code, driver_pid, driver_node_id, cluster_env";

// Column order shared by the build SELECTs and ReadBuild.
constexpr const char* kBuildColumns =
    "name, version, spec, status, image_ref, image_id, digest, registry_ref, oci_archive, "
    "created_ms, started_ms, finished_ms, error_message";

// The env row with its build summary; `e` is cluster_envs.
constexpr const char* kEnvSelect =
    "SELECT e.name, e.created_ms, e.archived_ms, "
    "(SELECT MAX(version) FROM cluster_env_builds b WHERE b.name = e.name), "
    "(SELECT COUNT(*) FROM cluster_env_builds b WHERE b.name = e.name), "
    "(SELECT MAX(version) FROM cluster_env_builds b WHERE b.name = e.name "
    "AND b.status = 'SUCCEEDED') FROM cluster_envs e";

constexpr std::array<std::pair<BuildStatus, std::string_view>, 4> kBuildStatusNames{{
    {BuildStatus::kPending, "PENDING"},
    {BuildStatus::kInProgress, "IN_PROGRESS"},
    {BuildStatus::kSucceeded, "SUCCEEDED"},
    {BuildStatus::kFailed, "FAILED"},
}};

util::Json OptionalJson(const std::optional<std::int64_t>& value) {
  return value ? util::Json(*value) : util::Json(nullptr);
}

}  // namespace

std::string_view JobStatusName(JobStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "PENDING";
}

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
  for (const auto& [value, known] : kStatusNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

bool IsTerminal(JobStatus status) {
  return status == JobStatus::kStopped || status == JobStatus::kSucceeded ||
         status == JobStatus::kFailed;
}

util::Json JobRecord::ToDetailsJson() const {
  util::Json details = util::Json::object();
  details["type"] = "SUBMISSION";
  details["job_id"] = nullptr;
  details["submission_id"] = submission_id;
  details["driver_info"] = nullptr;
  details["status"] = std::string(JobStatusName(status));
  details["entrypoint"] = entrypoint;
  details["message"] = message;
  details["error_type"] = error_type.empty() ? util::Json(nullptr) : util::Json(error_type);
  details["start_time"] = start_time_ms;
  details["end_time"] = end_time_ms ? util::Json(*end_time_ms) : util::Json(nullptr);
  details["metadata"] = metadata;
  details["runtime_env"] = runtime_env;
  details["driver_agent_http_address"] = nullptr;
  // Ray leaves it None until a driver has been placed on a node.
  details["driver_node_id"] =
      driver_node_id.empty() ? util::Json(nullptr) : util::Json(driver_node_id);
  details["driver_exit_code"] =
      driver_exit_code ? util::Json(*driver_exit_code) : util::Json(nullptr);
  if (!cluster_env.empty()) details["cluster_env"] = cluster_env;
  return details;
}

std::string_view BuildStatusName(BuildStatus status) {
  for (const auto& [value, name] : kBuildStatusNames) {
    if (value == status) return name;
  }
  return "PENDING";
}

std::optional<BuildStatus> ParseBuildStatus(std::string_view name) {
  for (const auto& [value, known] : kBuildStatusNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

bool IsTerminal(BuildStatus status) {
  return status == BuildStatus::kSucceeded || status == BuildStatus::kFailed;
}

util::Json ClusterEnvBuildRecord::ToJson() const {
  util::Json json = util::Json::object();
  json["name"] = name;
  json["version"] = version;
  json["ref"] = name + ":" + std::to_string(version);
  json["spec"] = spec;
  json["status"] = std::string(BuildStatusName(status));
  json["image_ref"] = image_ref;
  json["image_id"] = image_id;
  json["digest"] = digest;
  json["registry_ref"] = registry_ref;
  json["oci_archive"] = oci_archive;
  std::error_code ec;
  json["oci_archive_ready"] = !oci_archive.empty() && std::filesystem::exists(oci_archive, ec);
  json["created_ms"] = created_ms;
  json["started_ms"] = OptionalJson(started_ms);
  json["finished_ms"] = OptionalJson(finished_ms);
  json["error_message"] = error_message;
  return json;
}

util::Json ClusterEnvRecord::ToJson() const {
  util::Json json = util::Json::object();
  json["name"] = name;
  json["created_ms"] = created_ms;
  json["archived"] = archived_ms.has_value();
  json["archived_ms"] = OptionalJson(archived_ms);
  json["latest_version"] = latest_version;
  json["build_count"] = build_count;
  json["latest_succeeded_version"] =
      latest_succeeded_version ? util::Json(*latest_succeeded_version) : util::Json(nullptr);
  return json;
}

namespace {

// The connection and what guards it; HeadDb::Impl is this, named so that the
// helpers below can take it.
struct Connection {
  fs::path file;
  sqlite3* db = nullptr;
  // Statements are prepared once and reused; they belong to `db`.
  std::unordered_map<std::string, sqlite3_stmt*> statements;
  std::mutex mu;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    if (db != nullptr) sqlite3_close(db);
  }

  util::Error Fail(std::string_view what) const {
    return util::IOError("head database " + file.string() + ": " + std::string(what) + ": " +
                         sqlite3_errmsg(db));
  }

  util::Status Exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return {};
    std::string text = message != nullptr ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return util::IOError("head database " + file.string() + ": " + text);
  }
};

// A cached statement, reset and unbound when the use ends. Callers hold the
// connection's mutex for its whole lifetime.
class Statement {
 public:
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  static util::Result<Statement> Prepare(sqlite3* db,
                                         std::unordered_map<std::string, sqlite3_stmt*>& cache,
                                         const std::string& sql) {
    auto it = cache.find(sql);
    if (it == cache.end()) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
          SQLITE_OK) {
        sqlite3_finalize(stmt);
        return util::IOError(std::string("cannot prepare statement: ") + sqlite3_errmsg(db));
      }
      it = cache.emplace(sql, stmt).first;
    }
    return Statement(it->second);
  }

  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

  Statement& Bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: the view may not outlive the call.
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Statement& Bind(int index, double value) {
    sqlite3_bind_double(stmt_, index, value);
    return *this;
  }
  template <class T>
  Statement& Bind(int index, const std::optional<T>& value) {
    if (value) return Bind(index, static_cast<std::int64_t>(*value));
    sqlite3_bind_null(stmt_, index);
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }

  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return "";
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Real(int column) const { return sqlite3_column_double(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* stmt_ = nullptr;
};

// Rolls back unless committed, so every early return leaves the database as it was.
class Transaction {
 public:
  explicit Transaction(Connection& impl) : impl_(impl) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) (void)impl_.Exec("ROLLBACK");
  }
  // IMMEDIATE takes the write lock up front, so a reader-turned-writer never
  // fails with SQLITE_BUSY half way through.
  util::Status Begin() {
    util::Status status = impl_.Exec("BEGIN IMMEDIATE");
    open_ = status.ok();
    return status;
  }
  util::Status Commit() {
    util::Status status = impl_.Exec("COMMIT");
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  Connection& impl_;
  bool open_ = false;
};

util::Result<JobRecord> ReadJob(const Connection& impl, const Statement& row) {
  JobRecord job;
  job.submission_id = row.Text(0);
  job.entrypoint = row.Text(1);
  std::string status = row.Text(2);
  auto parsed = ParseJobStatus(status);
  if (!parsed) {
    return util::Error{util::ErrorKind::kCorruption, "head database " + impl.file.string() +
                                                         ": job " + job.submission_id +
                                                         " has an unknown status '" + status + "'"};
  }
  job.status = *parsed;
  job.message = row.Text(3);
  job.error_type = row.Text(4);
  job.start_time_ms = row.Int(5);
  if (!row.IsNull(6)) job.end_time_ms = row.Int(6);
  const std::pair<int, util::Json*> json_columns[] = {
      {7, &job.metadata}, {8, &job.runtime_env}, {12, &job.entrypoint_resources}};
  for (const auto& [column, target] : json_columns) {
    auto value = util::ParseJson(row.Text(column));
    if (!value) {
      return util::Error{util::ErrorKind::kCorruption,
                         "head database " + impl.file.string() + ": job " + job.submission_id +
                             " has invalid JSON: " + value.error().message};
    }
    *target = std::move(*value);
  }
  job.entrypoint_num_cpus = row.Real(9);
  job.entrypoint_num_gpus = row.Real(10);
  job.entrypoint_memory = row.Int(11);
  if (!row.IsNull(13)) job.driver_exit_code = static_cast<int>(row.Int(13));
  if (!row.IsNull(14)) job.driver_pid = static_cast<int>(row.Int(14));
  job.driver_node_id = row.Text(15);
  job.cluster_env = row.Text(16);
  return job;
}

// Binds the 17 job columns in kJobColumns order, starting at parameter 1.
void BindJob(Statement& stmt, const JobRecord& job) {
  stmt.Bind(1, job.submission_id)
      .Bind(2, job.entrypoint)
      .Bind(3, JobStatusName(job.status))
      .Bind(4, job.message)
      .Bind(5, job.error_type)
      .Bind(6, job.start_time_ms)
      .Bind(7, job.end_time_ms)
      .Bind(8, util::DumpsSorted(job.metadata))
      .Bind(9, util::DumpsSorted(job.runtime_env))
      .Bind(10, job.entrypoint_num_cpus)
      .Bind(11, job.entrypoint_num_gpus)
      .Bind(12, job.entrypoint_memory)
      .Bind(13, util::DumpsSorted(job.entrypoint_resources))
      .Bind(14, job.driver_exit_code)
      .Bind(15, job.driver_pid)
      .Bind(16, job.driver_node_id)
      .Bind(17, job.cluster_env);
}

util::Status AddEvent(Connection& impl, std::string_view id, std::int64_t time_ms, JobStatus status,
                      std::string_view message) {
  auto stmt = Statement::Prepare(
      impl.db, impl.statements,
      "INSERT INTO job_events(submission_id, time_ms, status, message) VALUES(?, ?, ?, ?)");
  if (!stmt) return std::move(stmt).error();
  stmt->Bind(1, id).Bind(2, time_ms).Bind(3, JobStatusName(status)).Bind(4, message);
  if (stmt->Step() != SQLITE_DONE)
    return impl.Fail("cannot record an event of job " + std::string(id));
  return {};
}

util::Error JobNotFound(std::string_view id) {
  return util::NotFoundError("Job " + std::string(id) + " does not exist");
}

util::Error CorruptBuild(const Connection& impl, std::string_view name, std::int64_t version,
                         std::string_view what) {
  return util::Error{util::ErrorKind::kCorruption, "head database " + impl.file.string() +
                                                       ": cluster env build " + std::string(name) +
                                                       ":" + std::to_string(version) + " " +
                                                       std::string(what)};
}

util::Result<ClusterEnvBuildRecord> ReadBuild(const Connection& impl, const Statement& row) {
  ClusterEnvBuildRecord build;
  build.name = row.Text(0);
  build.version = static_cast<int>(row.Int(1));
  auto spec = util::ParseJson(row.Text(2));
  if (!spec) {
    return CorruptBuild(impl, build.name, build.version,
                        "has an invalid spec: " + spec.error().message);
  }
  build.spec = std::move(*spec);
  std::string status = row.Text(3);
  auto parsed = ParseBuildStatus(status);
  if (!parsed)
    return CorruptBuild(impl, build.name, build.version, "has an unknown status '" + status + "'");
  build.status = *parsed;
  build.image_ref = row.Text(4);
  build.image_id = row.Text(5);
  build.digest = row.Text(6);
  build.registry_ref = row.Text(7);
  build.oci_archive = row.Text(8);
  build.created_ms = row.Int(9);
  if (!row.IsNull(10)) build.started_ms = row.Int(10);
  if (!row.IsNull(11)) build.finished_ms = row.Int(11);
  build.error_message = row.Text(12);
  return build;
}

// Binds the 13 build columns in kBuildColumns order, starting at parameter 1.
void BindBuild(Statement& stmt, const ClusterEnvBuildRecord& build) {
  // Not DumpsSorted: the spec's key order (env_vars in file order) is part of it.
  std::string spec = build.spec.dump(-1, ' ', false, util::Json::error_handler_t::replace);
  stmt.Bind(1, build.name)
      .Bind(2, static_cast<std::int64_t>(build.version))
      .Bind(3, spec)
      .Bind(4, BuildStatusName(build.status))
      .Bind(5, build.image_ref)
      .Bind(6, build.image_id)
      .Bind(7, build.digest)
      .Bind(8, build.registry_ref)
      .Bind(9, build.oci_archive)
      .Bind(10, build.created_ms)
      .Bind(11, build.started_ms)
      .Bind(12, build.finished_ms)
      .Bind(13, build.error_message);
}

// Every row of a SELECT of kBuildColumns; rows that cannot be read are logged and skipped.
std::vector<ClusterEnvBuildRecord> ReadBuilds(const Connection& impl, Statement& stmt) {
  std::vector<ClusterEnvBuildRecord> builds;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    auto build = ReadBuild(impl, stmt);
    if (!build) {
      util::LogError(build.error().message);
      continue;
    }
    builds.push_back(std::move(*build));
  }
  if (rc != SQLITE_DONE) util::LogError(impl.Fail("cannot list cluster env builds").message);
  return builds;
}

// A row of kEnvSelect.
ClusterEnvRecord ReadEnv(const Statement& row) {
  ClusterEnvRecord env;
  env.name = row.Text(0);
  env.created_ms = row.Int(1);
  if (!row.IsNull(2)) env.archived_ms = row.Int(2);
  env.latest_version = row.IsNull(3) ? 0 : static_cast<int>(row.Int(3));
  env.build_count = static_cast<int>(row.Int(4));
  if (!row.IsNull(5)) env.latest_succeeded_version = static_cast<int>(row.Int(5));
  return env;
}

std::string BuildRef(std::string_view name, int version) {
  return std::string(name) + ":" + std::to_string(version);
}

util::Error EnvNotFound(std::string_view name) {
  return util::NotFoundError("cluster environment '" + std::string(name) + "' does not exist");
}

util::Error BuildNotFound(std::string_view name, int version) {
  return util::NotFoundError("cluster env build " + BuildRef(name, version) + " does not exist");
}

}  // namespace

struct HeadDb::Impl : Connection {};

util::Result<std::unique_ptr<HeadDb>> HeadDb::Open(const fs::path& file) {
  auto impl = std::make_unique<Impl>();
  impl->file = file;
  if (file.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    if (ec) {
      return util::IOError("cannot create the directory of head database " + file.string() + ": " +
                           ec.message());
    }
  }
  // NOMUTEX: the Impl's mutex already serializes every use of the connection.
  int rc =
      sqlite3_open_v2(file.c_str(), &impl->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = impl->db != nullptr ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc);
    return util::IOError("cannot open head database " + file.string() + ": " + message);
  }
  sqlite3_extended_result_codes(impl->db, 1);
  // Another process (a second head, `strata` tools) may hold the lock briefly.
  sqlite3_busy_timeout(impl->db, 5000);
  // journal_mode is the first statement that reads the file, so a file that
  // is not a database fails here. synchronous=NORMAL is durable across a
  // process crash in WAL mode; only an OS crash may lose the last commits.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchema}) {
    char* message = nullptr;
    if (sqlite3_exec(impl->db, pragma, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message != nullptr ? message : sqlite3_errmsg(impl->db);
      sqlite3_free(message);
      return util::IOError("cannot open head database " + file.string() + ": " + text);
    }
  }
  if (auto ok = AddMissingColumns(impl->db, file); !ok) return ok.error();
  return std::unique_ptr<HeadDb>(new HeadDb(std::move(impl)));
}

HeadDb::HeadDb(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HeadDb::~HeadDb() = default;

util::Status HeadDb::InsertJob(const JobRecord& job) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   std::string("INSERT INTO jobs(") + kJobColumns +
                                       ", seq) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                       "?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs))");
    if (!stmt) return std::move(stmt).error();
    BindJob(*stmt, job);
    int rc = stmt->Step();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return util::ValueError("Job with submission_id " + job.submission_id +
                              " already exists. Please use a different submission_id.");
    }
    if (rc != SQLITE_DONE) return impl_->Fail("cannot insert job " + job.submission_id);
  }
  // The first event carries the job's own start time, not the clock's.
  if (auto ok = AddEvent(*impl_, job.submission_id, job.start_time_ms, job.status, job.message);
      !ok) {
    return ok;
  }
  return txn.Commit();
}

util::Result<JobRecord> HeadDb::GetJob(std::string_view submission_id) const {
  std::lock_guard lock(impl_->mu);
  auto stmt = Statement::Prepare(
      impl_->db, impl_->statements,
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE submission_id = ?");
  if (!stmt) return std::move(stmt).error();
  stmt->Bind(1, submission_id);
  int rc = stmt->Step();
  if (rc == SQLITE_DONE) return JobNotFound(submission_id);
  if (rc != SQLITE_ROW) return impl_->Fail("cannot read job " + std::string(submission_id));
  return ReadJob(*impl_, *stmt);
}

std::vector<JobRecord> HeadDb::ListJobs() const {
  std::lock_guard lock(impl_->mu);
  std::vector<JobRecord> jobs;
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 std::string("SELECT ") + kJobColumns + " FROM jobs ORDER BY seq");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return jobs;
  }
  int rc;
  while ((rc = stmt->Step()) == SQLITE_ROW) {
    auto job = ReadJob(*impl_, *stmt);
    if (!job) {
      util::LogError(job.error().message);
      continue;
    }
    jobs.push_back(std::move(*job));
  }
  if (rc != SQLITE_DONE) util::LogError(impl_->Fail("cannot list jobs").message);
  return jobs;
}

util::Status HeadDb::UpdateJob(const JobRecord& job) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  std::string old_status;
  std::string old_message;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "SELECT status, message FROM jobs WHERE submission_id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, job.submission_id);
    int rc = stmt->Step();
    if (rc == SQLITE_DONE) return JobNotFound(job.submission_id);
    if (rc != SQLITE_ROW) return impl_->Fail("cannot read job " + job.submission_id);
    old_status = stmt->Text(0);
    old_message = stmt->Text(1);
  }
  {
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "UPDATE jobs SET entrypoint = ?2, status = ?3, message = ?4, error_type = ?5, "
        "start_time_ms = ?6, end_time_ms = ?7, metadata = ?8, runtime_env = ?9, "
        "entrypoint_num_cpus = ?10, entrypoint_num_gpus = ?11, entrypoint_memory = ?12, "
        "entrypoint_resources = ?13, driver_exit_code = ?14, driver_pid = ?15, "
        "driver_node_id = ?16, cluster_env = ?17 WHERE submission_id = ?1");
    if (!stmt) return std::move(stmt).error();
    BindJob(*stmt, job);
    if (stmt->Step() != SQLITE_DONE) return impl_->Fail("cannot update job " + job.submission_id);
  }
  if (old_status != JobStatusName(job.status) || old_message != job.message) {
    if (auto ok = AddEvent(*impl_, job.submission_id, NowMs(), job.status, job.message); !ok) {
      return ok;
    }
  }
  return txn.Commit();
}

util::Status HeadDb::DeleteJob(std::string_view submission_id) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "DELETE FROM jobs WHERE submission_id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, submission_id);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot delete job " + std::string(submission_id));
    }
    if (sqlite3_changes(impl_->db) == 0) return JobNotFound(submission_id);
  }
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "DELETE FROM job_events WHERE submission_id = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, submission_id);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot delete the events of job " + std::string(submission_id));
    }
  }
  return txn.Commit();
}

std::vector<JobEvent> HeadDb::JobHistory(std::string_view submission_id) const {
  std::lock_guard lock(impl_->mu);
  std::vector<JobEvent> events;
  auto stmt = Statement::Prepare(
      impl_->db, impl_->statements,
      "SELECT time_ms, status, message FROM job_events WHERE submission_id = ? ORDER BY rowid");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return events;
  }
  stmt->Bind(1, submission_id);
  int rc;
  while ((rc = stmt->Step()) == SQLITE_ROW) {
    auto status = ParseJobStatus(stmt->Text(1));
    if (!status) continue;
    events.push_back({stmt->Int(0), *status, stmt->Text(2)});
  }
  if (rc != SQLITE_DONE) util::LogError(impl_->Fail("cannot read job history").message);
  return events;
}

util::Status HeadDb::Pin(std::string_view uri, std::string_view holder, std::int64_t expires_ms) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    // MAX: a pin is only ever extended, never shortened by a later use.
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "INSERT INTO package_pins(uri, holder, expires_ms) VALUES(?, ?, ?) "
        "ON CONFLICT(uri, holder) DO UPDATE SET expires_ms = MAX(expires_ms, excluded.expires_ms)");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, uri).Bind(2, holder).Bind(3, expires_ms);
    if (stmt->Step() != SQLITE_DONE) return impl_->Fail("cannot pin " + std::string(uri));
  }
  return txn.Commit();
}

util::Status HeadDb::Unpin(std::string_view holder) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "DELETE FROM package_pins WHERE holder = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, holder);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot drop the pins of " + std::string(holder));
    }
  }
  return txn.Commit();
}

std::set<std::string> HeadDb::PinnedUris(std::int64_t now_ms) const {
  std::lock_guard lock(impl_->mu);
  std::set<std::string> uris;
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 "SELECT DISTINCT uri FROM package_pins WHERE expires_ms > ?");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return uris;
  }
  stmt->Bind(1, now_ms);
  int rc;
  while ((rc = stmt->Step()) == SQLITE_ROW) uris.insert(stmt->Text(0));
  if (rc != SQLITE_DONE) util::LogError(impl_->Fail("cannot read pins").message);
  return uris;
}

util::Result<std::size_t> HeadDb::DropExpiredPins(std::int64_t now_ms) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return std::move(ok).error();
  std::size_t dropped = 0;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "DELETE FROM package_pins WHERE expires_ms <= ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, now_ms);
    if (stmt->Step() != SQLITE_DONE) return impl_->Fail("cannot drop expired pins");
    dropped = static_cast<std::size_t>(sqlite3_changes(impl_->db));
  }
  if (auto ok = txn.Commit(); !ok) return std::move(ok).error();
  return dropped;
}

util::Result<ClusterEnvBuildRecord> HeadDb::InsertClusterEnvBuild(ClusterEnvBuildRecord build) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return std::move(ok).error();
  {
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "INSERT INTO cluster_envs(name, created_ms, archived_ms) VALUES(?, ?, NULL) "
        "ON CONFLICT(name) DO UPDATE SET archived_ms = NULL");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, build.name).Bind(2, build.created_ms);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot record cluster environment " + build.name);
    }
  }
  {
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "SELECT COALESCE(MAX(version), 0) + 1 FROM cluster_env_builds WHERE name = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, build.name);
    if (stmt->Step() != SQLITE_ROW) {
      return impl_->Fail("cannot number a build of cluster environment " + build.name);
    }
    build.version = static_cast<int>(stmt->Int(0));
  }
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   std::string("INSERT INTO cluster_env_builds(") + kBuildColumns +
                                       ", log) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')");
    if (!stmt) return std::move(stmt).error();
    BindBuild(*stmt, build);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot insert cluster env build " + BuildRef(build.name, build.version));
    }
  }
  if (auto ok = txn.Commit(); !ok) return std::move(ok).error();
  return build;
}

util::Status HeadDb::UpdateClusterEnvBuild(const ClusterEnvBuildRecord& build,
                                           const std::optional<std::string>& log) {
  const std::string ref = BuildRef(build.name, build.version);
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                   "SELECT status FROM cluster_env_builds WHERE name = ? AND "
                                   "version = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, build.name).Bind(2, static_cast<std::int64_t>(build.version));
    int rc = stmt->Step();
    if (rc == SQLITE_DONE) return BuildNotFound(build.name, build.version);
    if (rc != SQLITE_ROW) return impl_->Fail("cannot read cluster env build " + ref);
    auto stored = ParseBuildStatus(stmt->Text(0));
    // An unreadable status is treated as finished: nothing may overwrite it blindly.
    if (!stored || IsTerminal(*stored)) {
      return util::ValueError("cluster env build " + ref + " is finished and cannot change");
    }
  }
  {
    // An unbound ?14 is NULL, which keeps the stored log.
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "UPDATE cluster_env_builds SET spec = ?3, status = ?4, image_ref = ?5, image_id = ?6, "
        "digest = ?7, registry_ref = ?8, oci_archive = ?9, created_ms = ?10, started_ms = ?11, "
        "finished_ms = ?12, error_message = ?13, log = COALESCE(?14, log) "
        "WHERE name = ?1 AND version = ?2");
    if (!stmt) return std::move(stmt).error();
    BindBuild(*stmt, build);
    if (log) stmt->Bind(14, *log);
    if (stmt->Step() != SQLITE_DONE) return impl_->Fail("cannot update cluster env build " + ref);
  }
  return txn.Commit();
}

util::Result<ClusterEnvBuildRecord> HeadDb::GetClusterEnvBuild(std::string_view name,
                                                               int version) const {
  std::lock_guard lock(impl_->mu);
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 std::string("SELECT ") + kBuildColumns +
                                     " FROM cluster_env_builds WHERE name = ? AND version = ?");
  if (!stmt) return std::move(stmt).error();
  stmt->Bind(1, name).Bind(2, static_cast<std::int64_t>(version));
  int rc = stmt->Step();
  if (rc == SQLITE_DONE) return BuildNotFound(name, version);
  if (rc != SQLITE_ROW)
    return impl_->Fail("cannot read cluster env build " + BuildRef(name, version));
  return ReadBuild(*impl_, *stmt);
}

std::vector<ClusterEnvBuildRecord> HeadDb::ListClusterEnvBuilds(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 std::string("SELECT ") + kBuildColumns +
                                     " FROM cluster_env_builds WHERE name = ? ORDER BY version");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return {};
  }
  stmt->Bind(1, name);
  return ReadBuilds(*impl_, *stmt);
}

std::vector<ClusterEnvBuildRecord> HeadDb::ListClusterEnvBuildsWithStatus(
    const std::vector<BuildStatus>& statuses) const {
  if (statuses.empty()) return {};
  std::string placeholders;
  for (std::size_t i = 0; i < statuses.size(); ++i) placeholders += i == 0 ? "?" : ", ?";
  std::lock_guard lock(impl_->mu);
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 std::string("SELECT ") + kBuildColumns +
                                     " FROM cluster_env_builds WHERE status IN (" + placeholders +
                                     ") ORDER BY name, version");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return {};
  }
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    stmt->Bind(static_cast<int>(i + 1), BuildStatusName(statuses[i]));
  }
  return ReadBuilds(*impl_, *stmt);
}

util::Result<std::string> HeadDb::ClusterEnvBuildLog(std::string_view name, int version) const {
  std::lock_guard lock(impl_->mu);
  auto stmt =
      Statement::Prepare(impl_->db, impl_->statements,
                         "SELECT log FROM cluster_env_builds WHERE name = ? AND version = ?");
  if (!stmt) return std::move(stmt).error();
  stmt->Bind(1, name).Bind(2, static_cast<std::int64_t>(version));
  int rc = stmt->Step();
  if (rc == SQLITE_DONE) return BuildNotFound(name, version);
  if (rc != SQLITE_ROW) {
    return impl_->Fail("cannot read the log of cluster env build " + BuildRef(name, version));
  }
  return stmt->Text(0);
}

util::Result<ClusterEnvRecord> HeadDb::GetClusterEnv(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto stmt = Statement::Prepare(impl_->db, impl_->statements,
                                 std::string(kEnvSelect) + " WHERE e.name = ?");
  if (!stmt) return std::move(stmt).error();
  stmt->Bind(1, name);
  int rc = stmt->Step();
  if (rc == SQLITE_DONE) return EnvNotFound(name);
  if (rc != SQLITE_ROW) {
    return impl_->Fail("cannot read cluster environment " + std::string(name));
  }
  return ReadEnv(*stmt);
}

std::vector<ClusterEnvRecord> HeadDb::ListClusterEnvs(bool include_archived) const {
  std::lock_guard lock(impl_->mu);
  std::vector<ClusterEnvRecord> envs;
  auto stmt = Statement::Prepare(
      impl_->db, impl_->statements,
      std::string(kEnvSelect) + " WHERE ?1 OR e.archived_ms IS NULL ORDER BY e.name");
  if (!stmt) {
    util::LogError(stmt.error().message);
    return envs;
  }
  stmt->Bind(1, static_cast<std::int64_t>(include_archived ? 1 : 0));
  int rc;
  while ((rc = stmt->Step()) == SQLITE_ROW) envs.push_back(ReadEnv(*stmt));
  if (rc != SQLITE_DONE) util::LogError(impl_->Fail("cannot list cluster environments").message);
  return envs;
}

util::Status HeadDb::ArchiveClusterEnv(std::string_view name, std::int64_t now_ms) {
  std::lock_guard lock(impl_->mu);
  Transaction txn(*impl_);
  if (auto ok = txn.Begin(); !ok) return ok;
  {
    auto stmt = Statement::Prepare(
        impl_->db, impl_->statements,
        "UPDATE cluster_envs SET archived_ms = COALESCE(archived_ms, ?) WHERE name = ?");
    if (!stmt) return std::move(stmt).error();
    stmt->Bind(1, now_ms).Bind(2, name);
    if (stmt->Step() != SQLITE_DONE) {
      return impl_->Fail("cannot archive cluster environment " + std::string(name));
    }
    if (sqlite3_changes(impl_->db) == 0) return EnvNotFound(name);
  }
  return txn.Commit();
}

}  // namespace strata::head
