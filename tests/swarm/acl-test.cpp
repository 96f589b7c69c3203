// `dnnswarm acl` against a real Mosquitto running the production config with the ACL and passwords
// it writes: the demo plan runs end to end through the ACL'd, TLS broker (the ACL is sufficient),
// and a node's login cannot write another stage's input or a client's results nor read another
// node's topics (the ACL is restrictive).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "support/fixtures.h"
#include "support/mosquitto.h"
#include "swarm/acl.h"
#include "transport/mqtt_client.h"

namespace dnn {
namespace {

using namespace std::chrono_literals;

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(Acl, EachRoleGetsItsOwnTopics) {
  const Plan plan = read_plan(test::source("deploy/lenet5-swarm.json"));   // conv1, conv2 x2, fc1 sharded x2, head
  const auto logins = plan_logins(plan, "p", {"cam"});
  ASSERT_EQ(logins.size(), 7u);
  auto login = [&](const std::string& name) {
    return *std::find_if(logins.begin(), logins.end(), [&](const AclLogin& l) { return l.name == name; });
  };
  const AclLogin conv1 = login("conv1-r0"), conv2 = login("conv2-r1"), shard = login("fc1-k1-r0"), head = login("head-r0"),
                 cam = login("cam");
  EXPECT_TRUE(has(conv1.read, "p/lenet5/s0/in"));
  EXPECT_TRUE(has(conv1.read, "p/lenet5/frames/+"));
  EXPECT_TRUE(has(conv1.write, "p/lenet5/s1/in"));
  EXPECT_FALSE(has(conv1.write, "p/lenet5/s3/in"));
  EXPECT_FALSE(has(conv1.write, "p/client/+/result"));
  EXPECT_TRUE(has(conv1.read, "p/ctl/heartbeat/+"));   // every node follows who is alive
  EXPECT_TRUE(has(conv1.read, "p/node/+/status"));
  EXPECT_TRUE(has(conv1.write, "p/node/cam/in"));       // acknowledgements to the client
  // conv2 opens the joins of the sharded fc1 and forwards the joined result to head.
  EXPECT_TRUE(has(conv2.write, "p/lenet5/s2/shard0/in"));
  EXPECT_TRUE(has(conv2.write, "p/lenet5/s2/shard1/in"));
  EXPECT_TRUE(has(conv2.write, "p/lenet5/s3/in"));
  EXPECT_TRUE(has(conv2.write, "p/node/+/work"));   // handoffs, steering around silent replicas
  EXPECT_TRUE(has(conv2.read, "p/ctl/heartbeat/+"));
  EXPECT_FALSE(has(conv2.read, "p/lenet5/frames/+"));
  EXPECT_EQ(shard.read.front(), "p/lenet5/s2/shard1/in");
  EXPECT_TRUE(has(shard.write, "p/node/conv2-r0/in"));
  EXPECT_TRUE(has(shard.write, "p/node/conv2-r1/in"));
  EXPECT_FALSE(has(shard.write, "p/lenet5/s3/in"));
  EXPECT_TRUE(has(head.write, "p/client/+/result"));
  EXPECT_TRUE(has(head.write, "p/lenet5/results/+"));
  EXPECT_EQ(cam.read.front(), "p/client/cam/result");
  EXPECT_TRUE(has(cam.write, "p/lenet5/s0/in"));
  EXPECT_TRUE(has(cam.write, "p/lenet5/frames/+"));
  EXPECT_FALSE(has(cam.write, "p/lenet5/s1/in"));
  EXPECT_TRUE(has(cam.write, "p/node/+/work"));   // re-sends to a live replica
  EXPECT_FALSE(has(cam.write, "p/client/+/result"));
  EXPECT_THROW(plan_logins(plan, "p", {"head-r0"}), Error);   // a client may not take a node's name
}

class AclBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/acl-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    std::string out;
    ASSERT_EQ(test::run_cli("acl --plan " + test::source("deploy/lenet5-swarm.json") + " --client cam --out-dir " + dir_, &out),
              0)
        << out;
    struct stat st {};
    ASSERT_EQ(stat((dir_ + "/conv1-r0.password").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);   // one secret per device, for its owner only
    // A re-run keeps the passwords (adding a client must not change every device's).
    const std::string before = password("conv1-r0");
    ASSERT_EQ(test::run_cli("acl --plan " + test::source("deploy/lenet5-swarm.json") + " --client cam --out-dir " + dir_, &out),
              0);
    EXPECT_EQ(password("conv1-r0"), before);
    // The broker reads them as its own user (a real install chowns them to mosquitto instead).
    chmod((dir_ + "/passwd").c_str(), 0644);
    broker_ = std::make_unique<test::MosquittoBroker>(test::SecureBroker{dir_ + "/passwd", dir_ + "/acl", certs_.ca(), certs_.server()});
  }
  void TearDown() override {
    broker_.reset();
    (void)!system(("rm -rf " + dir_).c_str());
  }
  std::string password(const std::string& login) const {
    std::ifstream in(dir_ + "/" + login + ".password");
    std::string pw;
    std::getline(in, pw);
    return pw;
  }

  // A client logged in as `login` over TLS, its messages in `inbox`.
  struct Login {
    BoundedQueue<Inbound> inbox{64};
    MqttClient client;
    Login(const AclBroker& t, const std::string& login)
        : client(options(t, login), [this](Inbound&& m) { inbox.try_push(std::move(m)); }) {
      client.connect();
    }
    static MqttOptions options(const AclBroker& t, const std::string& login) {
      MqttOptions o;
      o.broker = t.broker_->tls_url();
      o.broker.username = login;
      o.broker.password = t.password(login);
      o.broker.cafile = t.certs_.ca();
      o.client_id = login;
      return o;
    }
    // Publishes, waits for the broker's PUBACK; true when the broker accepted it.
    bool publish(const std::string& topic) {
      const uint64_t failures = client.publish_failures();
      EXPECT_TRUE(client.publish(topic, "x"));
      EXPECT_TRUE(client.flush(20s));
      return client.publish_failures() == failures;
    }
  };

  std::string dir_;
  test::TestCerts certs_;
  std::unique_ptr<test::MosquittoBroker> broker_;
};

TEST_F(AclBroker, ANodeMayWriteOnlyItsOutputs) {
  Login conv1(*this, "conv1-r0");
  EXPECT_TRUE(conv1.publish("dnnswarm/lenet5/s1/in"));             // its next stage
  EXPECT_FALSE(conv1.publish("dnnswarm/lenet5/s3/in"));            // another stage's input: PUBACK 0x87
  EXPECT_FALSE(conv1.publish("dnnswarm/client/cam/result"));       // a client's results
  EXPECT_FALSE(conv1.publish("dnnswarm/node/conv2-r0/status"));    // another node's status
  EXPECT_TRUE(conv1.publish("dnnswarm/node/conv1-r0/status"));     // its own
  Login cam(*this, "cam");
  EXPECT_TRUE(cam.publish("dnnswarm/lenet5/s0/in"));
  EXPECT_TRUE(cam.publish("dnnswarm/lenet5/frames/porch"));
  EXPECT_FALSE(cam.publish("dnnswarm/lenet5/s1/in"));              // past the first stage
  EXPECT_FALSE(cam.publish("dnnswarm/client/other/result"));
}

TEST_F(AclBroker, ANodeReadsNothingOfOtherNodes) {
  Login conv1(*this, "conv1-r0"), conv2(*this, "conv2-r0"), shard(*this, "fc1-k0-r0"), head(*this, "head-r0"),
      cam(*this, "cam");
  // conv1 asks for another node's direct topic and another stage's input, plain and shared; Mosquitto
  // grants the subscriptions but must deliver nothing on them.
  for (const std::string f : {"dnnswarm/node/conv2-r0/in", "dnnswarm/lenet5/s3/in", "$share/x/dnnswarm/lenet5/s3/in",
                              "dnnswarm/client/cam/result", "dnnswarm/lenet5/s0/in"})
    conv1.client.subscribe(f);
  conv2.client.subscribe("dnnswarm/node/conv2-r0/in");
  head.client.subscribe("dnnswarm/lenet5/s3/in");
  ASSERT_TRUE(shard.publish("dnnswarm/node/conv2-r0/in"));   // a partial for conv2
  ASSERT_TRUE(conv2.publish("dnnswarm/lenet5/s3/in"));       // conv2's output for head
  // Their rightful readers get them ...
  auto got = conv2.inbox.pop_for(10s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "dnnswarm/node/conv2-r0/in");
  got = head.inbox.pop_for(10s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "dnnswarm/lenet5/s3/in");
  // ... and conv1, once its own input arrives after them, has received only that.
  ASSERT_TRUE(cam.publish("dnnswarm/lenet5/s0/in"));
  got = conv1.inbox.pop_for(10s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "dnnswarm/lenet5/s0/in");
  EXPECT_EQ(conv1.inbox.size(), 0u);
}

// The demo through the secured broker: every node logs in with its own login over TLS, the
// launcher as client "cam"; every digit is answered.
TEST_F(AclBroker, TheDemoRunsThroughTheAclTlsAndPasswords) {
  std::string out;
  ASSERT_EQ(test::run_cli("swarm --frames 200 --quiet --broker " + broker_->tls_url() + " --cafile " + certs_.ca() +
                              " --username cam --password-file " + dir_ + "/cam.password --credentials-dir " + dir_,
                          &out),
            0)
      << out << "\nbroker log:\n"
      << broker_->log();
  EXPECT_NE(out.find("\"frames\":200"), std::string::npos) << out;
  EXPECT_NE(out.find("\"lost\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"nodes\":6"), std::string::npos) << out;
  // Nothing was refused on the way.
  EXPECT_EQ(out.find("failed"), std::string::npos) << out;
}

// --serve: the nodes keep serving on the secured broker after one line saying where frames go; a
// separate `dnnswarm infer`, logged in as the client, gets its digits answered; Ctrl-C ends it.
TEST_F(AclBroker, ServeKeepsTheNodesServingForOtherClients) {
  const std::string log = dir_ + "/serve.log";
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec " + std::string(DNN_BINARY) + " swarm --serve --quiet --broker " + broker_->tls_url() +
                            " --cafile " + certs_.ca() + " --username cam --password-file " + dir_ +
                            "/cam.password --credentials-dir " + dir_ + " >" + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  // The line comes once every node is online (bounded: the launcher gives up after 120 s).
  std::string line;
  for (int i = 0; i < 1500 && line.empty(); ++i) {
    std::ifstream in(log);
    std::getline(in, line);
    if (line.empty()) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(line, "swarm: serving model 'lenet5' with 6 nodes on " + broker_->tls_url() +
                      ": frames go to dnnswarm/lenet5/frames/<sensor>, results come out on "
                      "dnnswarm/lenet5/results/<sensor> (Ctrl-C stops)");
  std::string out;
  const int rc = test::run_cli("infer --broker " + broker_->tls_url() + " --cafile " + certs_.ca() +
                                   " --username cam --password-file " + dir_ + "/cam.password --client-id cam --model lenet5 --input " +
                                   test::fixture("lenet5_mnist/test_inputs_100.npy"),
                               &out);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ok\":100"), std::string::npos) << out;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace dnn
