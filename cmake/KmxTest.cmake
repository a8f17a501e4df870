# kmx_add_unit_test(<module> SOURCES <files...> [LIBS <targets...>])
# Builds <module>_test from the listed sources and registers it with ctest as
# unit.<module>, label "unit", with a timeout.
function(kmx_add_unit_test module)
  if(NOT KMX_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${module}_test ${ARG_SOURCES})
  target_link_libraries(${module}_test PRIVATE kmx_common kmx_warnings PkgConfig::CMOCKA
                        ${ARG_LIBS})
  add_test(NAME unit.${module} COMMAND ${module}_test)
  set_tests_properties(unit.${module} PROPERTIES TIMEOUT 60 LABELS unit)
endfunction()
