// Secret files: private to their owner or refused with the fix; the content
// never appears in a refusal.
#include "config/secret_file.h"

#include "support/temp_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <fstream>

namespace evh::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string write(const test::TempDir& dir, const std::string& name, const std::string& content, mode_t mode) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(SecretFileTest, PrivateFileIsReadWithoutItsLastLineBreak) {
  test::TempDir dir;
  EXPECT_EQ(readSecretFile(write(dir, "a", "s3cret\n", 0600)).value, "s3cret");
  EXPECT_EQ(readSecretFile(write(dir, "b", "s3cret\r\n", 0400)).value, "s3cret");
  EXPECT_EQ(readSecretFile(write(dir, "c", "s3cret", 0600)).value, "s3cret");
  // Only one line break is the editor's; inner bytes are the secret's.
  EXPECT_EQ(readSecretFile(write(dir, "d", "a b\n\n", 0600)).value, "a b\n");
  EXPECT_FALSE(checkSecretFile(dir.path() + "/a"));
}

TEST(SecretFileTest, FileOthersMayReadIsRefusedWithTheFix) {
  test::TempDir dir;
  for (mode_t mode : {0640, 0604, 0620, 0602, 0644, 0666}) {
    const std::string path = write(dir, "k", "topsecretvalue\n", mode);
    const SecretRead r = readSecretFile(path);
    EXPECT_FALSE(r.value) << std::oct << mode;
    EXPECT_THAT(r.why, HasSubstr("chmod 600 " + path));
    EXPECT_THAT(r.why, Not(HasSubstr("topsecret")));
    ASSERT_TRUE(checkSecretFile(path));
    EXPECT_THAT(checkSecretFile(path)->why, HasSubstr("group or others"));
  }
}

TEST(SecretFileTest, SymlinkIsFollowedAndItsTargetChecked) {
  test::TempDir dir;
  const std::string target = write(dir, "t", "pw\n", 0600);
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(readSecretFile(link).value, "pw");
  ::chmod(target.c_str(), 0644);
  EXPECT_FALSE(readSecretFile(link).value);
}

TEST(SecretFileTest, MissingEmptyOrOddFilesAreNamed) {
  test::TempDir dir;
  EXPECT_THAT(readSecretFile(dir.path() + "/none").why, HasSubstr("No such file"));
  EXPECT_THAT(readSecretFile(write(dir, "e", "", 0600)).why, HasSubstr("is empty"));
  EXPECT_THAT(readSecretFile(write(dir, "n", "\n", 0600)).why, HasSubstr("holds no secret"));
  EXPECT_THAT(readSecretFile(write(dir, "big", std::string(70000, 'x'), 0600)).why, HasSubstr("larger than 64 KiB"));
  EXPECT_THAT(readSecretFile(dir.path()).why, HasSubstr("not a regular file"));
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(readSecretFile(fifo).why, HasSubstr("not a regular file"));  // and no hang
}

}  // namespace
}  // namespace evh::config
