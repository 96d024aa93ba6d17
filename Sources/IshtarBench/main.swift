print("bench: being written")
