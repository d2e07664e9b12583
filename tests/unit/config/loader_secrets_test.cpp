// Secrets in the YAML: redis.password_file (read, relative to the config's
// folder, never combined with another password), redis.tls.key_file (private
// to its owner), and error messages that never quote a password.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <map>

#include "config/config.h"
#include "support/temp_file.h"

namespace evh::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecret = "Zq7-s3cr3t-pw";

class LoaderSecretsTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }

  // The config file is taken to be in dir_, for relative paths.
  LoadResult load(const std::string& yaml) {
    return loadString(yaml, dir_.path() + "/cfg.yaml", [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
  }

  std::string errors(const LoadResult& r) const {
    std::string out;
    for (const std::string& e : r.errors) {
      out += e + "\n";
    }
    return out;
  }

  std::string cfg() const { return dir_.path() + "/cfg.yaml"; }

  test::TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(LoaderSecretsTest, PasswordFileIsReadRelativeToTheConfigFolder) {
  write("redis.pw", std::string(kSecret) + "\n");
  const LoadResult r = load("redis:\n  username: evh\n  password_file: redis.pw\n");
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->redis.password, kSecret);
  EXPECT_EQ(r.config->redis.username, "evh");
  // An absolute path, too, with a URL that names only the user.
  const LoadResult url =
      load("redis:\n  url: redis://evh@cache:6390/2\n  password_file: " + dir_.path() + "/redis.pw\n");
  ASSERT_TRUE(url.config) << errors(url);
  EXPECT_EQ(url.config->redis.password, kSecret);
  EXPECT_EQ(url.config->redis.username, "evh");
  EXPECT_EQ(url.config->redis.port, 6390);
}

TEST_F(LoaderSecretsTest, PasswordFileOthersMayReadIsAConfigErrorWithTheFix) {
  const std::string path = write("redis.pw", kSecret, 0644);
  const LoadResult r = load("redis:\n  host: h\n  password_file: redis.pw\n");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0], cfg() + ":3: redis.password_file: " + path +
                             " is accessible by group or others (mode 0644); a secret file must be private to its "
                             "owner: chmod 600 " +
                             path);
}

TEST_F(LoaderSecretsTest, MissingOrEmptyPasswordFileIsNamed) {
  LoadResult r = load("redis:\n  password_file: none.pw\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0],
            cfg() + ":2: redis.password_file: cannot read " + dir_.path() + "/none.pw: No such file or directory");
  write("empty.pw", "");
  r = load("redis:\n  password_file: empty.pw\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_THAT(r.errors[0], HasSubstr(":2: redis.password_file: "));
  EXPECT_THAT(r.errors[0], HasSubstr("empty.pw is empty"));
}

TEST_F(LoaderSecretsTest, PasswordFileCannotBeCombinedWithAPassword) {
  write("redis.pw", kSecret);
  LoadResult r = load("redis:\n  password: other\n  password_file: redis.pw\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0], cfg() +
                             ":3: redis.password_file: cannot be combined with redis.password (line 2): both set the "
                             "Redis password; give it in one place only");
  r = load("redis:\n  url: redis://:other@h\n  password_file: redis.pw\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0], cfg() +
                             ":3: redis.password_file: cannot be combined with redis.url (line 2, a URL holding a "
                             "password): both set the Redis password; give it in one place only");
  EXPECT_THAT(r.errors[0], Not(HasSubstr("other")));
}

// The default deployment writes `password: ${REDIS_PASSWORD:-}`: with the
// variable unset the password is empty, which is no password, so a
// password_file may stand beside it; with the variable set, both would.
TEST_F(LoaderSecretsTest, EmptyPasswordFromTheEnvironmentStandsAsideForTheFile) {
  write("redis.pw", kSecret);
  const std::string yaml = "redis:\n  password: ${REDIS_PASSWORD:-}\n  password_file: ${REDIS_PASSWORD_FILE:-}\n";
  LoadResult r = load(yaml);
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->redis.password, "");
  env_["REDIS_PASSWORD_FILE"] = "redis.pw";
  r = load(yaml);
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->redis.password, kSecret);
  env_["REDIS_PASSWORD"] = "from-env";
  r = load(yaml);
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_THAT(r.errors[0], HasSubstr("redis.password_file: cannot be combined with redis.password (line 2)"));
  EXPECT_THAT(r.errors[0], Not(HasSubstr("from-env")));
  env_.erase("REDIS_PASSWORD_FILE");
  r = load(yaml);
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->redis.password, "from-env");
}

TEST_F(LoaderSecretsTest, UserNameWithAnUnreadablePasswordFileGivesOneError) {
  const LoadResult r = load("redis:\n  username: evh\n  password_file: none.pw\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_THAT(r.errors[0], HasSubstr("redis.password_file: cannot read"));
}

TEST_F(LoaderSecretsTest, TlsKeyOthersMayReadIsRefusedAtLoad) {
  const std::string cert = write("client.crt", "not checked here");
  const std::string key = write("client.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n", 0640);
  const std::string yaml = "redis:\n  tls:\n    cert_file: client.crt\n    key_file: client.key\n";
  LoadResult r = load(yaml);
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0], cfg() + ":4: redis.tls.key_file: " + key +
                             " is accessible by group or others (mode 0640); a secret file must be private to its "
                             "owner: chmod 600 " +
                             key);
  ::chmod(key.c_str(), 0600);
  r = load(yaml);
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->redis.tls.key_file, key);
  EXPECT_EQ(r.config->redis.tls.cert_file, cert);
  // The certificate is public: its mode is not checked.
  ::chmod(cert.c_str(), 0644);
  EXPECT_TRUE(load(yaml).config);
}

TEST_F(LoaderSecretsTest, MalformedReferenceInAPasswordIsNotQuoted) {
  LoadResult r = load("redis:\n  password: \"ab${cd-ef\"\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_EQ(r.errors[0], cfg() +
                             ":2: redis.password: malformed variable reference (in a secret value, not shown): "
                             "expected \"}\" or \":-\" after the variable name");
  r = load("redis:\n  url: \"redis://:pa${ss@h\"\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_THAT(r.errors[0], HasSubstr("redis.url: malformed variable reference (in a secret value, not shown)"));
  EXPECT_THAT(r.errors[0], Not(HasSubstr("ss@h")));
  // Other keys still show the reference, to help find it.
  r = load("redis:\n  host: \"${HOST\"\n");
  ASSERT_EQ(r.errors.size(), 1U) << errors(r);
  EXPECT_THAT(r.errors[0], HasSubstr("\"${HOST\""));
}

TEST_F(LoaderSecretsTest, UrlErrorsNeverQuoteWhatMayBeAPassword) {
  // "@host" forgotten: the password stands where the port would.
  for (const char* url : {"redis://evh:Zq7-s3cr3t-pw", "redis://h:6379/Zq7-s3cr3t-pw", "redis://[::1]Zq7-s3cr3t-pw",
                          "Zq7:s3cr3t-pw://h", "redis://evh:Zq7-s3cr3t-pw@h:x"}) {
    const LoadResult r = load(std::string("redis:\n  url: \"") + url + "\"\n");
    ASSERT_EQ(r.errors.size(), 1U) << url << "\n" << errors(r);
    EXPECT_THAT(r.errors[0], HasSubstr("redis.url: invalid URL: ")) << url;
    EXPECT_THAT(r.errors[0], Not(HasSubstr("s3cr3t"))) << url;
  }
}

// ops.token_file: POST /reload's token, read like a password file; with
// `token` (a ${VAR}) as the other way to give it, never both.
TEST_F(LoaderSecretsTest, OpsTokenComesFromAPrivateFileOrAVariable) {
  write("ops.token", std::string(kSecret) + "\n");
  LoadResult r = load("ops:\n  token_file: ops.token\n");
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->ops.token, kSecret);

  env_["EVH_OPS_TOKEN"] = kSecret;
  r = load("ops:\n  token: ${EVH_OPS_TOKEN}\n");
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->ops.token, kSecret);

  r = load("ops:\n  token: ${EVH_OPS_TOKEN}\n  token_file: ops.token\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(errors(r), HasSubstr("cfg.yaml:3: ops.token_file: cannot be combined with ops.token (line 2)"));
  EXPECT_THAT(errors(r), Not(HasSubstr(kSecret)));

  write("open.token", std::string(kSecret) + "\n", 0644);
  r = load("ops:\n  token_file: open.token\n");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(errors(r), HasSubstr("ops.token_file"));
  EXPECT_THAT(errors(r), HasSubstr("chmod"));
  EXPECT_THAT(errors(r), Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace evh::config
