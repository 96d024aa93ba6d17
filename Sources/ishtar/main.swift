print("ishtar: being written")
