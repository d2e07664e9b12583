# Run by `cmake --install` (component runtime), so for the prefix given to
# the install, not the configure's: cpack installs the package's files with
# the prefix /usr (CPACK_SET_DESTDIR), `cmake --install build` with
# /usr/local, a test with its own. The files whose content or place depends on
# that prefix:
#
#   <confdir>/jollyjet.yaml              config/jollyjet.yaml, its state files in
#                                        /var/lib/evhost unless EVH_STATE_DIR says
#   <unitdir>/evhost.service             packaging/systemd/evhost.service.in
#   <prefix>/lib/sysusers.d/evhost.conf  packaging/systemd/evhost.sysusers
#
# For the prefix /usr these are Debian 12's places: /etc/evhost and
# /lib/systemd/system (bookworm's units are not under /usr yet: lintian's
# systemd-service-file-outside-lib). For another prefix, under it:
# <prefix>/etc/evhost (as GNUInstallDirs puts the configuration) and
# <prefix>/lib/systemd/system, which systemd reads for /usr/local.
#
# Set by packaging/CMakeLists.txt before this runs: EVH_SOURCE_DIR,
# EVH_WORK_DIR (a folder of the build tree), EVH_BINDIR and EVH_DOCDIR (the
# GNUInstallDirs relative paths).

if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
  set(evh_prefix /usr)
  set(evh_confdir /etc/evhost)
  set(evh_unitdir /lib/systemd/system)
else()
  string(REGEX REPLACE "/+$" "" evh_prefix "${CMAKE_INSTALL_PREFIX}")
  set(evh_confdir "${evh_prefix}/etc/evhost")
  set(evh_unitdir "${evh_prefix}/lib/systemd/system")
endif()

# One folder per destination: two installs at once (tests, cpack) do not
# write each other's files.
string(MD5 evh_key "$ENV{DESTDIR}|${evh_prefix}")
set(evh_out "${EVH_WORK_DIR}/${evh_key}")
file(MAKE_DIRECTORY "${evh_out}")

# The configuration: JollyJet's default deployment, with its state files
# where the service keeps them (the unit's StateDirectory). Every other path
# in it is found from the installed binary (the bundled plugins).
file(READ "${EVH_SOURCE_DIR}/config/jollyjet.yaml" evh_config)
set(evh_from [[${EVH_STATE_DIR:-.}]])
set(evh_to [[${EVH_STATE_DIR:-/var/lib/evhost}]])
string(FIND "${evh_config}" "${evh_from}" evh_at)
if(evh_at EQUAL -1)
  message(FATAL_ERROR "config/jollyjet.yaml no longer says ${evh_from} for its state files: "
                      "update packaging/install_service.cmake, which points them at /var/lib/evhost")
endif()
string(REPLACE "${evh_from}" "${evh_to}" evh_config "${evh_config}")
file(WRITE "${evh_out}/jollyjet.yaml" "${evh_config}")
# An installed configuration that differs (edited) is kept, as dpkg keeps a
# conffile: this one goes beside it as jollyjet.yaml.new.
set(evh_config_name jollyjet.yaml)
if(EXISTS "$ENV{DESTDIR}${evh_confdir}/jollyjet.yaml")
  file(READ "$ENV{DESTDIR}${evh_confdir}/jollyjet.yaml" evh_installed)
  if(NOT evh_installed STREQUAL evh_config)
    set(evh_config_name jollyjet.yaml.new)
    message(STATUS "Keeping the edited $ENV{DESTDIR}${evh_confdir}/jollyjet.yaml; this version is jollyjet.yaml.new")
  endif()
endif()
file(INSTALL DESTINATION "${evh_confdir}" TYPE FILE FILES "${evh_out}/jollyjet.yaml" RENAME ${evh_config_name})

set(EVH_BINDIR "${evh_prefix}/${EVH_BINDIR}")
set(EVH_CONFDIR "${evh_confdir}")
set(EVH_DOCDIR "${evh_prefix}/${EVH_DOCDIR}")
configure_file("${EVH_SOURCE_DIR}/packaging/systemd/evhost.service.in" "${evh_out}/evhost.service" @ONLY)
file(INSTALL DESTINATION "${evh_unitdir}" TYPE FILE FILES "${evh_out}/evhost.service")

file(INSTALL DESTINATION "${evh_prefix}/lib/sysusers.d" TYPE FILE
  FILES "${EVH_SOURCE_DIR}/packaging/systemd/evhost.sysusers" RENAME evhost.conf)
