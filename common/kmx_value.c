/* placeholder: replaced by the real module */
#include "kmx_value.h"
typedef int kmx_placeholder_t;
