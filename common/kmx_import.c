/* placeholder: replaced by the real module */
#include "kmx_import.h"
typedef int kmx_placeholder_t;
