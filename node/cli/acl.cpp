// dnnswarm acl: the broker logins for a plan. Writes, into --out-dir:
//   acl                 the Mosquitto ACL: each node reads only its inputs and writes only its
//                       outputs, a client writes requests/frames and reads its own results
//                       (swarm/acl.h lists the topics of each role)
//   passwd              Mosquitto's password file for those logins (hashed by `mosquitto_passwd -U`)
//   <login>.password    each login's password, mode 0600, for `--password-file` on its device
// A login's user name is its MQTT client id: the node ids `dnnswarm swarm` uses, and the --client
// names. Passwords already in <login>.password files are kept, so adding a client changes nobody
// else's. docs/security.md shows how the broker uses these files.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "cli/common.h"
#include "core/error.h"
#include "swarm/acl.h"
#include "swarm/plan.h"
#include "transport/topics.h"

namespace dnn::cli {

namespace {

namespace fs = std::filesystem;

// 24 characters from [A-Za-z0-9] (about 143 bits), from the kernel's random source.
std::string random_password() {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd("/dev/urandom");
  std::uniform_int_distribution<int> pick(0, 61);
  std::string pw;
  for (int i = 0; i < 24; ++i) pw += kChars[pick(rd)];
  return pw;
}

// Writes `text` to `path` readable by its owner only (created so: never briefly world-readable).
void write_private(const std::string& path, const std::string& text) {
  const mode_t old = ::umask(077);
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  ::umask(old);
  if (!out) throw IoError("cannot write " + path);
  ::chmod(path.c_str(), 0600);
}

// The password kept in `path`, or a new one written there.
std::string password_of(const std::string& path) {
  std::ifstream in(path);
  std::string pw;
  if (in && std::getline(in, pw) && !pw.empty()) return pw;
  pw = random_password();
  write_private(path, pw + "\n");
  return pw;
}

// Hashes a file of user:password lines in place with mosquitto_passwd -U (no shell, no password in argv).
void hash_password_file(const std::string& path) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error("fork failed");
  if (pid == 0) {
    ::execlp("mosquitto_passwd", "mosquitto_passwd", "-U", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fs::remove(path);   // never leave the plain-text passwords behind
    throw Error(WIFEXITED(status) && WEXITSTATUS(status) == 127
                    ? "mosquitto_passwd (Debian package mosquitto) is needed to hash the passwords"
                    : "mosquitto_passwd -U " + path + " failed (status " + std::to_string(status) + ")");
  }
}

}  // namespace

int cmd_acl(int argc, char** argv) {
  std::string plan_path, prefix, out_dir;
  std::vector<std::string> clients;
  po::options_description opts("options");
  opts.add_options()
      ("plan,p", po::value(&plan_path)->required(), "deployment plan (JSON) whose nodes get logins")
      ("prefix", po::value(&prefix)->default_value(Topics::kDefaultPrefix), "MQTT topic prefix the swarm uses")
      ("client", po::value(&clients)->composing(),
       "a client login (repeatable): may send requests and frames and read its own results; "
       "it must connect with --client-id equal to this name")
      ("out-dir,o", po::value(&out_dir)->default_value("."), "folder for acl, passwd and <login>.password");
  po::variables_map vm;
  if (!parse(argc, argv, "--plan P [--prefix p] [--client NAME ...] [--out-dir D]", opts, vm)) return 0;

  const Plan plan = read_plan(plan_path);
  const std::vector<AclLogin> logins = plan_logins(plan, prefix, clients);
  fs::create_directories(out_dir);

  std::ofstream acl(out_dir + "/acl", std::ios::trunc);
  acl << acl_file_text(logins, "plan " + plan_path + " (model " + plan.model + ", prefix " + prefix + ")");
  acl.close();
  if (!acl) throw IoError("cannot write " + out_dir + "/acl");

  std::string plain;
  for (const auto& l : logins) plain += l.name + ":" + password_of(out_dir + "/" + l.name + ".password") + "\n";
  write_private(out_dir + "/passwd", plain);
  hash_password_file(out_dir + "/passwd");

  int nodes = 0;
  for (const auto& l : logins) nodes += l.node;
  std::cout << "acl: " << nodes << " node and " << logins.size() - nodes << " client logins for model '" << plan.model
            << "': " << out_dir << "/acl, " << out_dir << "/passwd (for the broker), " << out_dir
            << "/<login>.password (mode 0600, one per device)\n";
  return 0;
}

}  // namespace dnn::cli
