#!/bin/sh
# user_data_file of the spot build: never run (moto does not boot instances); compared as sent.
echo "spot build user data" > /tmp/amibake-diff-user-data
