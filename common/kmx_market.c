/* placeholder: replaced by the real module */
#include "kmx_market.h"
typedef int kmx_placeholder_t;
